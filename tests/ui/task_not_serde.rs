// A task's input that is not a serde type: one error, naming the type and the derive.

struct Page {
    number: u32,
}

#[amorsize::task]
fn render(page: Page) -> u32 {
    page.number
}

fn main() {
    let _ = render;
}
