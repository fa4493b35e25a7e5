//! The real files and text the files and tokens rows read, found and read once per
//! process, so the parent and its cold subprocesses build exactly the same input.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::rows::RowId;

/// The real files the files and tokens rows read: every `*.rs` file under
/// `$CARGO_HOME/registry/src` (the sources of the crates cargo downloaded, which any
/// machine that built this benchmark has), else this repository's own, sorted by path
/// so the parent and its cold subprocesses see the same list.
#[derive(Debug)]
pub struct Corpus {
    pub root: PathBuf,
    pub paths: Vec<PathBuf>,
    /// Total size of the files, in bytes.
    pub bytes: u64,
}

impl Corpus {
    /// One line for the report: how many files, how big, from where.
    pub fn describe(&self) -> String {
        format!(
            "{} `*.rs` files, {:.1} MiB, under `{}`",
            self.paths.len(),
            self.bytes as f64 / f64::from(1 << 20),
            self.root.display()
        )
    }
}

/// The corpus, found once per process.
pub fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let under = |root: PathBuf| {
            let mut found = Vec::new();
            walk(&root, &mut found);
            found.sort();
            Corpus {
                root,
                bytes: found.iter().map(|(_, len)| len).sum(),
                paths: found.into_iter().map(|(path, _)| path).collect(),
            }
        };
        std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))
            .map(|home| under(home.join("registry").join("src")))
            .filter(|c| !c.paths.is_empty())
            .unwrap_or_else(|| under(PathBuf::from(env!("CARGO_MANIFEST_DIR"))))
    })
}

/// Every `*.rs` file under `dir`, with its size, skipping `.git` and `target*`
/// directories (build output, when the corpus is this repository) and symbolic links;
/// a directory that cannot be read is skipped.
fn walk(dir: &Path, out: &mut Vec<(PathBuf, u64)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if kind.is_dir() && name != ".git" && !name.starts_with("target") {
            walk(&path, out);
        } else if kind.is_file() && name.ends_with(".rs") {
            let len = entry.metadata().map_or(0, |m| m.len());
            out.push((path, len));
        }
    }
}

/// The files row's input: the corpus's first `n` paths (cycled if it has fewer). Reads
/// each of them once first, so that every column, and each cold subprocess, finds them
/// in the page cache and the columns compare hashing, not the disk.
pub fn files(n: usize) -> Vec<PathBuf> {
    let all = &corpus().paths;
    for path in all.iter().take(n) {
        let _ = std::hint::black_box(fs::read(path));
    }
    all.iter().cycle().take(n).cloned().collect()
}

/// The text the tokens row's lines borrow: the corpus's files, in order, until it holds
/// the full row's lines (files that are not UTF-8 are skipped). Read once per process.
fn source_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let want = RowId::Tokens.items(false);
        let mut text = String::new();
        let mut lines = 0;
        for path in &corpus().paths {
            if lines >= want {
                break;
            }
            if let Ok(source) = fs::read_to_string(path) {
                lines += source.lines().count();
                text.push_str(&source);
                if !text.ends_with('\n') {
                    text.push('\n');
                }
            }
        }
        text
    })
}

/// The tokens row's input: the first `n` lines of the text (cycled if it has fewer).
pub fn tokens(n: usize) -> Vec<&'static str> {
    source_text().lines().cycle().take(n).collect()
}
