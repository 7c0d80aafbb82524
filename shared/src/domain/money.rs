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

/// An amount of money with exactly two decimal places on the wire (`"999.99"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(Decimal);

/// Why a string is not a valid amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not a decimal number at all.
    #[error("must be a decimal number such as \"9.99\"")]
    NotANumber,
    /// More than two decimal places: rejected, never rounded.
    #[error("must have at most two decimal places")]
    TooPrecise,
    /// Below zero.
    #[error("must not be negative")]
    Negative,
    /// Above [`MAX_AMOUNT`].
    #[error("must not exceed 99999999")]
    TooLarge,
}

impl Money {
    /// Zero.
    pub const ZERO: Money = Money(Decimal::ZERO);

    /// Parses a decimal string; more than two places, negatives and absurd amounts are errors.
    pub fn parse(text: &str) -> Result<Self, MoneyError> {
        let text = text.trim();
        // Exponent forms ("1e3") would hide the written precision; accept only plain decimals.
        if text.is_empty()
            || !text
                .chars()
                .all(|c| c.is_ascii_digit() || c == '.' || c == '-')
        {
            return Err(MoneyError::NotANumber);
        }
        let value = Decimal::from_str(text).map_err(|_| MoneyError::NotANumber)?;
        Self::from_decimal(value)
    }

    /// Checks an already-parsed decimal (its scale is the written precision).
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

    #[test]
    fn parses_two_places_and_prints_exactly_two() {
        assert_eq!(Money::parse("999.99").unwrap().to_string(), "999.99");
        assert_eq!(Money::parse("5").unwrap().to_string(), "5.00");
        assert_eq!(Money::parse("0.1").unwrap().to_string(), "0.10");
        assert_eq!(Money::parse("1.500").unwrap().to_string(), "1.50");
    }

    #[test]
    fn rejects_three_places_negative_and_garbage_instead_of_rounding() {
        assert_eq!(Money::parse("1.999"), Err(MoneyError::TooPrecise));
        assert_eq!(Money::parse("-1.00"), Err(MoneyError::Negative));
        assert_eq!(Money::parse("abc"), Err(MoneyError::NotANumber));
        assert_eq!(Money::parse("1e3"), Err(MoneyError::NotANumber));
        assert_eq!(Money::parse(""), Err(MoneyError::NotANumber));
        assert_eq!(Money::parse("100000000"), Err(MoneyError::TooLarge));
    }

    #[test]
    fn sums_line_totals_without_float_error() {
        let q = |n| Quantity::parse(n).unwrap();
        let total =
            Money::parse("0.10").unwrap().times(q(3)) + Money::parse("999.99").unwrap().times(q(2));
        assert_eq!(total.to_string(), "2000.28");
    }
}
