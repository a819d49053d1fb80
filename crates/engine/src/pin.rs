//! PINs: digits only, a minimum length from the settings, and nothing trivial.

use thiserror::Error;

pub const MAX_PIN_DIGITS: usize = 16;

#[derive(Debug, Error, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PinError {
    #[error("the PIN must be digits only")]
    NotDigits,
    #[error("the PIN must have at least {0} digits")]
    TooShort(usize),
    #[error("the PIN must have at most {MAX_PIN_DIGITS} digits")]
    TooLong,
    #[error(
        "the PIN is too easy to guess (a repeated digit, a run such as 1234, or a repeated pattern); choose another"
    )]
    Trivial,
}

impl PinError {
    pub fn code(&self) -> &'static str {
        match self {
            PinError::NotDigits => "pin_not_digits",
            PinError::TooShort(_) => "pin_too_short",
            PinError::TooLong => "pin_too_long",
            PinError::Trivial => "pin_trivial",
        }
    }
}

/// Checks a new PIN against the policy. ASCII digits only: a PIN is typed on phone keypads.
pub fn check_new_pin(pin: &str, min_digits: usize) -> Result<(), PinError> {
    if pin.len() > MAX_PIN_DIGITS * 4 {
        return Err(PinError::TooLong);
    }
    if !pin.bytes().all(|b| b.is_ascii_digit()) || pin.is_empty() {
        return Err(PinError::NotDigits);
    }
    if pin.len() < min_digits {
        return Err(PinError::TooShort(min_digits));
    }
    if pin.len() > MAX_PIN_DIGITS {
        return Err(PinError::TooLong);
    }
    if is_trivial(pin.as_bytes()) {
        return Err(PinError::Trivial);
    }
    Ok(())
}

fn is_trivial(d: &[u8]) -> bool {
    let steps: Vec<i16> = d
        .windows(2)
        .map(|w| (i16::from(w[1]) - i16::from(w[0])).rem_euclid(10))
        .collect();
    // 0000, 1234, 7890 (runs wrap around), 4321, 2109.
    let constant_step =
        steps.windows(2).all(|w| w[0] == w[1]) && matches!(steps.first(), Some(0 | 1 | 9) | None);
    // 1212, 123123, 100100: the PIN is one shorter pattern repeated.
    let repeated_pattern = (1..=d.len() / 2)
        .any(|len| d.len().is_multiple_of(len) && d.chunks(len).all(|c| c == &d[..len]));
    constant_step || repeated_pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trivial_pins_are_refused() {
        for pin in [
            "0000", "1111", "1234", "4321", "7890", "0987", "123456", "1212", "123123", "100100",
            "2468246",
        ] {
            let result = check_new_pin(pin, 4);
            if pin == "2468246" {
                assert!(result.is_ok(), "{pin} is not a plain repetition");
            } else {
                assert_eq!(result, Err(PinError::Trivial), "{pin}");
            }
        }
    }

    #[test]
    fn ordinary_pins_are_accepted() {
        for pin in ["2580", "7391", "80426", "135792"] {
            assert_eq!(check_new_pin(pin, 4), Ok(()), "{pin}");
        }
    }

    #[test]
    fn length_and_digits_are_checked() {
        assert_eq!(check_new_pin("739", 4), Err(PinError::TooShort(4)));
        assert_eq!(check_new_pin("73915", 6), Err(PinError::TooShort(6)));
        assert_eq!(check_new_pin("7391a", 4), Err(PinError::NotDigits));
        assert_eq!(check_new_pin("７３９１", 4), Err(PinError::NotDigits));
        assert_eq!(check_new_pin("", 4), Err(PinError::NotDigits));
        assert_eq!(check_new_pin(&"73".repeat(9), 4), Err(PinError::TooLong));
    }
}
