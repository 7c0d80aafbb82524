//! Money: a non-negative decimal amount with at most two places, never a float.

use std::fmt;
use std::iter::Sum;
use std::ops::Add;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Serialize, Serializer};

use super::Quantity;

/// Largest accepted amount; keeps totals of 100 lines x 10,000 units far inside `Decimal`'s range.
const MAX_AMOUNT: Decimal = Decimal::from_parts(99_999_999, 0, 0, false, 0);
/// Digits of [`MAX_AMOUNT`] before the point.
const MAX_WHOLE_DIGITS: usize = 8;

/// An amount of money with exactly two decimal places on the wire (`"999.99"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(Decimal);

/// Why a client's amount is not a valid amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not written as digits with an optional decimal point (signs, spaces, exponents, words).
    #[error(
        "must be a decimal such as \"9.99\": digits, optionally a point and one or two decimals"
    )]
    NotANumber,
    /// More than two decimal places as written (`"1.990"` too): rejected, never rounded.
    #[error("must have at most two decimal places")]
    TooPrecise,
    /// Below zero.
    #[error("is out of range (0 to 99999999)")]
    Negative,
    /// Above [`MAX_AMOUNT`].
    #[error("is out of range (0 to 99999999)")]
    TooLarge,
}

impl Money {
    /// Zero.
    pub const ZERO: Money = Money(Decimal::ZERO);

    /// Parses a client's amount exactly as written: `^[0-9]+(\.[0-9]{1,2})?$`. Nothing is trimmed
    /// or rounded; a sign, an exponent, spaces or a third decimal (even `0`) are errors, so the
    /// amount stored is the amount the client wrote.
    pub fn parse(text: &str) -> Result<Self, MoneyError> {
        let (digits, negative) = match text.strip_prefix('-') {
            Some(rest) => (rest, true),
            None => (text, false),
        };
        let (whole, places) = match digits.split_once('.') {
            Some((whole, places)) => (whole, Some(places)),
            None => (digits, None),
        };
        let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(whole) || places.is_some_and(|p| !all_digits(p)) {
            return Err(MoneyError::NotANumber);
        }
        let is_zero = whole
            .bytes()
            .chain(places.unwrap_or("").bytes())
            .all(|b| b == b'0');
        if negative && !is_zero {
            return Err(MoneyError::Negative);
        }
        if negative {
            return Err(MoneyError::NotANumber);
        }
        // Out of range before precision: a 30-digit amount is too large, whatever its decimals.
        if whole.trim_start_matches('0').len() > MAX_WHOLE_DIGITS {
            return Err(MoneyError::TooLarge);
        }
        if places.is_some_and(|p| p.len() > 2) {
            return Err(MoneyError::TooPrecise);
        }
        let value = Decimal::from_str(digits).map_err(|_| MoneyError::NotANumber)?;
        Self::from_decimal(value)
    }

    /// Checks an amount read back from the store, where only the value counts (DynamoDB may
    /// write `9.9` for `9.90`): at most two significant decimals, 0..=99999999.
    pub fn from_decimal(value: Decimal) -> Result<Self, MoneyError> {
        if value.is_sign_negative() && !value.is_zero() {
            return Err(MoneyError::Negative);
        }
        if value.normalize().scale() > 2 {
            return Err(MoneyError::TooPrecise);
        }
        if value > MAX_AMOUNT {
            return Err(MoneyError::TooLarge);
        }
        let mut value = value.normalize();
        value.rescale(2);
        Ok(Money(value))
    }

    /// The amount as a decimal with scale 2.
    pub fn as_decimal(&self) -> Decimal {
        self.0
    }

    /// The price of `quantity` units.
    pub fn times(self, quantity: Quantity) -> Money {
        Money(self.0 * Decimal::from(quantity.get()))
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money(self.0 + rhs.0)
    }
}

impl Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2}", self.0)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Any text is parsed or refused, never a panic; what is accepted prints back exactly
        /// as a two-place amount.
        #[test]
        fn any_text_is_parsed_or_refused(text in ".{0,24}") {
            if let Ok(money) = Money::parse(&text) {
                let printed = money.to_string();
                proptest::prop_assert!(printed.contains('.'), "{}", printed);
                proptest::prop_assert_eq!(Money::parse(&printed).unwrap(), money);
            }
        }

        /// Every amount with up to two places is taken as written; a third place never is.
        #[test]
        fn two_places_round_trip_and_a_third_is_refused(
            whole in 0_u64..10_000_000,
            cents in 0_u32..100,
            third in 0_u32..10,
        ) {
            let text = format!("{whole}.{cents:02}");
            proptest::prop_assert_eq!(Money::parse(&text).unwrap().to_string(), text.clone());
            let three_places = format!("{text}{third}");
            proptest::prop_assert!(Money::parse(&three_places).is_err());
            let negative = format!("-{text}");
            let is_zero = whole == 0 && cents == 0;
            proptest::prop_assert!(Money::parse(&negative).is_err() || is_zero);
        }
    }

    #[test]
    fn parses_two_places_and_prints_exactly_two() {
        assert_eq!(Money::parse("999.99").unwrap().to_string(), "999.99");
        assert_eq!(Money::parse("5").unwrap().to_string(), "5.00");
        assert_eq!(Money::parse("0.1").unwrap().to_string(), "0.10");
        assert_eq!(Money::parse("0").unwrap().to_string(), "0.00");
        assert_eq!(
            Money::parse("99999999.00").unwrap().to_string(),
            "99999999.00"
        );
    }

    #[test]
    fn rejects_three_places_negative_and_garbage_instead_of_rounding() {
        assert_eq!(Money::parse("1.999"), Err(MoneyError::TooPrecise));
        assert_eq!(Money::parse("1.990"), Err(MoneyError::TooPrecise));
        assert_eq!(Money::parse("1.500"), Err(MoneyError::TooPrecise));
        assert_eq!(Money::parse("-1.00"), Err(MoneyError::Negative));
        assert_eq!(Money::parse("100000000"), Err(MoneyError::TooLarge));
        assert_eq!(Money::parse("99999999.01"), Err(MoneyError::TooLarge));
        assert_eq!(
            Money::parse("123456789012345678901234567890.5"),
            Err(MoneyError::TooLarge)
        );
        for garbage in [
            "abc", "1e3", "1E2", "", " 2.00 ", "2.00\n", "+1", ".5", "5.", "1,00", "0x10", "-0",
            "1.2.3", "١٢",
        ] {
            assert_eq!(
                Money::parse(garbage),
                Err(MoneyError::NotANumber),
                "{garbage:?}"
            );
        }
    }

    #[test]
    fn out_of_range_amounts_say_so() {
        assert!(MoneyError::TooLarge.to_string().contains("out of range"));
        assert!(MoneyError::Negative.to_string().contains("out of range"));
    }

    #[test]
    fn a_stored_amount_counts_its_value_not_its_trailing_zeros() {
        let stored = |text: &str| Money::from_decimal(Decimal::from_str(text).unwrap());
        assert_eq!(stored("9.9").unwrap().to_string(), "9.90");
        assert_eq!(stored("9.900").unwrap().to_string(), "9.90");
        assert_eq!(stored("9.999"), Err(MoneyError::TooPrecise));
    }

    #[test]
    fn sums_line_totals_without_float_error() {
        let q = |n| Quantity::parse(n).unwrap();
        let total =
            Money::parse("0.10").unwrap().times(q(3)) + Money::parse("999.99").unwrap().times(q(2));
        assert_eq!(total.to_string(), "2000.28");
    }
}
