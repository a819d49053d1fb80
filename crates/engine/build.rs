//! Decompresses the shipped list of common passwords into `OUT_DIR`, after checking that it
//! is what `password.rs`'s binary search needs: one password a line, printable ASCII, lower
//! case, sorted bytewise without duplicates.

use std::io::Read;

const LIST: &str = "data/common-passwords.txt.gz";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo::rerun-if-changed={LIST}");
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(LIST)?).read_to_string(&mut text)?;
    let mut previous: Option<&str> = None;
    for (number, line) in text.split_terminator('\n').enumerate() {
        let fits = !line.is_empty()
            && line.bytes().all(|b| (b' '..=b'~').contains(&b))
            && !line.bytes().any(|b| b.is_ascii_uppercase());
        if !fits {
            return Err(format!(
                "{LIST}, line {}: not lower-case printable ASCII",
                number + 1
            )
            .into());
        }
        if previous.is_some_and(|p| p.as_bytes() >= line.as_bytes()) {
            return Err(format!("{LIST}, line {}: not sorted or repeated", number + 1).into());
        }
        previous = Some(line);
    }
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("common-passwords.txt");
    std::fs::write(out, text)?;
    Ok(())
}
