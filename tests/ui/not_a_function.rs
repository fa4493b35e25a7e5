use amorsize::auto_parallel;

#[auto_parallel]
struct Thumbnails {
    paths: Vec<String>,
}

fn main() {
    let _ = Thumbnails { paths: Vec::new() }.paths;
}
