//! Sharpen a 4K photo-like image (an unsharp mask in linear light), row by row: the
//! kind of CPU-heavy, evenly spread work that parallelises well on threads.
//!
//! Run with `cargo run --release --example image_transform`. It draws a 3840x2160 RGB
//! image, saves it as a PPM file under the system temp directory, loads it back,
//! sharpens it, saves the result next to it, and removes both.
//!
//! What it gets with 2 CPUs available, and why (measured with nothing else running;
//! timings move by 10-30% from run to run):
//!
//! - Pass 1 (decode, blur each row horizontally): `rayon x2, chunk 83: est. 1.97x serial
//!   (2138 items x 130.2 us)`.
//! - Pass 2 (blur vertically, sharpen, encode): `rayon x2, chunk 88: est. 1.97x serial
//!   (2138 items x 172.2 us)`.
//!
//! Every row is over 100 us of arithmetic with no waiting (thread CPU / wall 1.0) and
//! rows cost the same, so one worker per core on rayon, in chunks large enough that
//! handing them out is negligible and small enough that the cores finish together.
//! Serial 610 ms, `#[auto_parallel]` 407 ms (1.50x; 1.5x-1.8x over several runs).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use amorsize::prelude::*;

const WIDTH: usize = 3840;
const HEIGHT: usize = 2160;
/// Blur radius in pixels, and how strongly the detail is boosted.
const RADIUS: usize = 6;
const AMOUNT: f32 = 0.8;

/// An 8-bit RGB image, rows top to bottom.
#[derive(Clone, PartialEq)]
struct Image {
    width: usize,
    height: usize,
    rgb: Vec<u8>,
}

/// A directory under the system temp directory, removed when dropped (also on panic).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A smooth scene with edges and grain, so that sharpening has something to do.
fn draw(width: usize, height: usize) -> Image {
    let mut rgb = Vec::with_capacity(width * height * 3);
    let mut noise = 0x853c_49e6_748f_ea9bu64;
    for y in 0..height {
        for x in 0..width {
            let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
            let sky = 0.5 + 0.5 * (fx * 9.0 + (fy * 5.0).sin()).sin();
            let disc = ((fx - 0.6).powi(2) + (fy - 0.4).powi(2) < 0.04) as u8 as f32;
            let stripes = ((x / 48 + y / 48) % 2) as f32;
            noise ^= noise << 13;
            noise ^= noise >> 7;
            noise ^= noise << 17;
            let grain = (noise % 17) as f32 - 8.0;
            let px = [
                200.0 * sky + 40.0 * disc + grain,
                120.0 + 60.0 * stripes * fy + grain,
                90.0 + 150.0 * (1.0 - sky) * fx + grain,
            ];
            rgb.extend(px.map(|c| c.clamp(0.0, 255.0) as u8));
        }
    }
    Image { width, height, rgb }
}

fn save_ppm(path: &Path, img: &Image) -> io::Result<()> {
    let mut bytes = format!("P6\n{} {}\n255\n", img.width, img.height).into_bytes();
    bytes.extend_from_slice(&img.rgb);
    fs::write(path, bytes)
}

/// Reads the binary PPM files that `save_ppm` writes.
fn load_ppm(path: &Path) -> io::Result<Image> {
    let bytes = fs::read(path)?;
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "not a P6 PPM file");
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 4 {
        while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
            at += 1;
        }
        let start = at;
        while bytes.get(at).is_some_and(|b| !b.is_ascii_whitespace()) {
            at += 1;
        }
        fields.push(std::str::from_utf8(&bytes[start..at]).map_err(|_| bad())?);
    }
    let num = |s: &str| s.parse::<usize>().map_err(|_| bad());
    if fields[0] != "P6" || fields[3] != "255" {
        return Err(bad());
    }
    let (width, height) = (num(fields[1])?, num(fields[2])?);
    let rgb = bytes.get(at + 1..).ok_or_else(bad)?.to_vec();
    if rgb.len() != width * height * 3 {
        return Err(bad());
    }
    Ok(Image { width, height, rgb })
}

/// sRGB to linear light, for every byte value.
fn decode_table() -> [f32; 256] {
    std::array::from_fn(|i| {
        let c = i as f32 / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    })
}

/// Linear light back to an sRGB byte.
fn encode(c: f32) -> u8 {
    let c = c.clamp(0.0, 1.0);
    let s = if c <= 0.003_130_8 {
        c * 12.92
    } else {
        1.055 * c.powf(1.0 / 2.4) - 0.055
    };
    (s * 255.0 + 0.5) as u8
}

/// Normalised Gaussian weights for offsets `-RADIUS..=RADIUS`.
fn kernel() -> [f32; 2 * RADIUS + 1] {
    let sigma = RADIUS as f32 / 2.0;
    let w: [f32; 2 * RADIUS + 1] = std::array::from_fn(|i| {
        let d = i as f32 - RADIUS as f32;
        (-d * d / (2.0 * sigma * sigma)).exp()
    });
    let sum: f32 = w.iter().sum();
    w.map(|x| x / sum)
}

/// Pass 1, one row: decode to linear light and blur horizontally (edges clamp).
fn blur_row(img: &Image, lut: &[f32; 256], k: &[f32], y: usize) -> Vec<f32> {
    let row = &img.rgb[y * img.width * 3..(y + 1) * img.width * 3];
    let mut out = vec![0.0f32; row.len()];
    for x in 0..img.width {
        for c in 0..3 {
            let mut acc = 0.0;
            for (i, w) in k.iter().enumerate() {
                let sx = (x + i).saturating_sub(RADIUS).min(img.width - 1);
                acc += w * lut[row[sx * 3 + c] as usize];
            }
            out[x * 3 + c] = acc;
        }
    }
    out
}

/// Pass 2, one row: blur the pass-1 rows vertically, add back the detail
/// (`sharp = x + AMOUNT * (x - blurred)`) and encode to sRGB.
fn sharpen_row(
    img: &Image,
    lut: &[f32; 256],
    k: &[f32],
    blurred: &[Vec<f32>],
    y: usize,
) -> Vec<u8> {
    let n = img.width * 3;
    let mut acc = vec![0.0f32; n];
    for (i, w) in k.iter().enumerate() {
        let sy = (y + i).saturating_sub(RADIUS).min(img.height - 1);
        for (a, b) in acc.iter_mut().zip(&blurred[sy]) {
            *a += w * b;
        }
    }
    let src = &img.rgb[y * n..(y + 1) * n];
    src.iter()
        .zip(acc)
        .map(|(&p, blur)| {
            let x = lut[p as usize];
            encode(x + AMOUNT * (x - blur))
        })
        .collect()
}

/// The plain serial version: what you would write without amorsize.
fn sharpen_serial(img: &Image) -> Image {
    let (lut, k) = (decode_table(), kernel());
    let blurred: Vec<Vec<f32>> = (0..img.height)
        .map(|y| blur_row(img, &lut, &k, y))
        .collect();
    let rows: Vec<Vec<u8>> = (0..img.height)
        .map(|y| sharpen_row(img, &lut, &k, &blurred, y))
        .collect();
    Image {
        width: img.width,
        height: img.height,
        rgb: rows.concat(),
    }
}

/// The very same body under `#[auto_parallel]`: each of the two pipelines becomes
/// `(0..img.height).par_auto().map(..).collect()` and gets its own plan, which `log`
/// prints on stderr when it is decided (once per run here: then it is cached).
#[auto_parallel(log)]
fn sharpen(img: &Image) -> Image {
    let (lut, k) = (decode_table(), kernel());
    let blurred: Vec<Vec<f32>> = (0..img.height)
        .map(|y| blur_row(img, &lut, &k, y))
        .collect();
    let rows: Vec<Vec<u8>> = (0..img.height)
        .map(|y| sharpen_row(img, &lut, &k, &blurred, y))
        .collect();
    Image {
        width: img.width,
        height: img.height,
        rgb: rows.concat(),
    }
}

fn timed<R>(f: impl FnOnce() -> R) -> (Duration, R) {
    let t = Instant::now();
    let r = f();
    (t.elapsed(), r)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> io::Result<()> {
    const REPS: usize = 3;
    let dir = TempDir(
        std::env::temp_dir().join(format!("amorsize-image-transform-{}", std::process::id())),
    );
    fs::create_dir_all(&dir.0)?;
    let input = dir.0.join("input.ppm");
    save_ppm(&input, &draw(WIDTH, HEIGHT))?;
    let img = load_ppm(&input)?;
    println!(
        "loaded {}x{} RGB ({:.1} MiB) from {}\n",
        img.width,
        img.height,
        img.rgb.len() as f64 / (1 << 20) as f64,
        input.display()
    );

    // Serial and #[auto_parallel] runs interleaved, so that a busy machine slows both
    // alike; every result must equal the serial one.
    let (mut t_serial, mut t_cached, mut first) = (Vec::new(), Vec::new(), Duration::ZERO);
    let mut expected = None;
    for rep in 0..REPS {
        let (t, want) = timed(|| sharpen_serial(&img));
        t_serial.push(t);
        let (t, got) = timed(|| sharpen(&img));
        assert!(got == want, "#[auto_parallel] must give the serial image");
        expected = Some(want);
        if rep == 0 {
            first = t;
        } else {
            t_cached.push(t);
        }
    }
    let out = expected.expect("REPS is at least 1");
    let (serial, cached) = (median(t_serial), median(t_cached));
    println!("sharpen (plans: the `amorsize:` lines on stderr)");
    println!("  serial         {serial:>9.1?}   median of {REPS}");
    println!("  auto_parallel  {first:>9.1?}   first call: sampling and planning included");
    println!(
        "  auto_parallel  {cached:>9.1?}   median of {}, plans cached: {:.2}x serial",
        REPS - 1,
        serial.as_secs_f64() / cached.as_secs_f64()
    );

    let output = dir.0.join("sharpened.ppm");
    save_ppm(&output, &out)?;
    let changed = img.rgb.iter().zip(&out.rgb).filter(|(a, b)| a != b).count();
    println!(
        "\nwrote {} ({:.1}% of channel values changed by sharpening)",
        output.display(),
        100.0 * changed as f64 / out.rgb.len() as f64
    );
    Ok(())
}
