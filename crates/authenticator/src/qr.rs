//! Reading an activation QR code from a PNG (a screenshot of the portal's page, say).

use std::path::{Path, PathBuf};

use crate::protocol::{ActivationLink, LinkError};

/// Why a picture gives no activation link.
#[derive(Debug, thiserror::Error)]
pub enum QrError {
    #[error("{path} cannot be read: {reason}")]
    Read {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error("{path} is not a PNG picture that can be read ({reason})")]
    Image {
        path: PathBuf,
        reason: image::ImageError,
    },
    #[error("{path} holds no QR code that can be read")]
    NoQrCode { path: PathBuf },
    #[error("the QR code in {path}: {reason}")]
    NotActivationLink { path: PathBuf, reason: LinkError },
}

/// The texts of the QR codes in `picture`, in the order they are found.
pub fn decode_texts(picture: &image::DynamicImage) -> Vec<String> {
    let mut prepared = rqrr::PreparedImage::prepare(picture.to_luma8());
    prepared
        .detect_grids()
        .iter()
        .filter_map(|grid| grid.decode().ok())
        .map(|(_, text)| text)
        .collect()
}

/// Reads the PNG at `path` and the activation link of the QR code in it.
pub fn read_activation_link(path: &Path) -> Result<ActivationLink, QrError> {
    let bytes = std::fs::read(path).map_err(|reason| QrError::Read {
        path: path.to_owned(),
        reason,
    })?;
    let picture =
        image::load_from_memory_with_format(&bytes, image::ImageFormat::Png).map_err(|reason| {
            QrError::Image {
                path: path.to_owned(),
                reason,
            }
        })?;
    let texts = decode_texts(&picture);
    let mut first_error = None;
    for text in &texts {
        match ActivationLink::parse(text) {
            Ok(link) => return Ok(link),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(reason) => Err(QrError::NotActivationLink {
            path: path.to_owned(),
            reason,
        }),
        None => Err(QrError::NoQrCode {
            path: path.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// Draws `text` as a QR code the way a screen shows it: 8 pixels a module, with the
    /// 4-module quiet zone around it.
    fn qr_png(dir: &Path, text: &str) -> PathBuf {
        let code = qrcode::QrCode::new(text.as_bytes()).unwrap();
        let width = code.width();
        let colors = code.to_colors();
        let (scale, quiet) = (8usize, 4usize);
        let side = (width + 2 * quiet) * scale;
        let picture = image::GrayImage::from_fn(side as u32, side as u32, |x, y| {
            let (mx, my) = (x as usize / scale, y as usize / scale);
            let dark = mx >= quiet
                && my >= quiet
                && mx < quiet + width
                && my < quiet + width
                && colors[(my - quiet) * width + (mx - quiet)] == qrcode::Color::Dark;
            image::Luma([if dark { 0 } else { 255 }])
        });
        let path = dir.join("qr.png");
        picture.save(&path).unwrap();
        path
    }

    #[test]
    fn the_activation_link_is_read_from_a_png_of_its_qr_code() {
        let temp = tempfile::tempdir().unwrap();
        let path = qr_png(
            temp.path(),
            "twofold://activate?url=https%3A%2F%2F127.0.0.1%3A8443%2F&code=7K3M-Q9TX-2HBW-V4RD",
        );
        let link = read_activation_link(&path).unwrap();
        assert_eq!(link.url, "https://127.0.0.1:8443");
        assert_eq!(link.code, "7K3M-Q9TX-2HBW-V4RD");
    }

    #[test]
    fn a_qr_code_of_something_else_is_refused() {
        let temp = tempfile::tempdir().unwrap();
        let path = qr_png(
            temp.path(),
            "otpauth://totp/Contoso:ada?secret=JBSWY3DPEHPK3PXP",
        );
        assert!(matches!(
            read_activation_link(&path),
            Err(QrError::NotActivationLink {
                reason: LinkError::NotActivationLink,
                ..
            })
        ));
    }

    #[test]
    fn a_picture_without_a_qr_code_says_so() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("blank.png");
        image::GrayImage::from_pixel(200, 200, image::Luma([255]))
            .save(&path)
            .unwrap();
        assert!(matches!(
            read_activation_link(&path),
            Err(QrError::NoQrCode { .. })
        ));
    }

    #[test]
    fn a_file_that_is_not_a_png_or_is_missing_says_so() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("notes.png");
        std::fs::write(&path, b"not a picture").unwrap();
        assert!(matches!(
            read_activation_link(&path),
            Err(QrError::Image { .. })
        ));
        assert!(matches!(
            read_activation_link(&temp.path().join("missing.png")),
            Err(QrError::Read { .. })
        ));
    }
}
