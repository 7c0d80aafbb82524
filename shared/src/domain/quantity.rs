//! Quantity of one product in an order line: an integer from 1 to 10,000.

use serde::Serialize;

/// Largest quantity of one product in one order.
pub const MAX_QUANTITY: i64 = 10_000;

/// A validated order-line quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Quantity(u32);

/// Why a number is not a valid quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is out of range (1 to {MAX_QUANTITY})")]
pub struct QuantityError;

impl Quantity {
    /// Parses a quantity; zero, negatives and values above [`MAX_QUANTITY`] are errors.
    pub fn parse(value: i64) -> Result<Self, QuantityError> {
        if (1..=MAX_QUANTITY).contains(&value) {
            Ok(Quantity(value as u32))
        } else {
            Err(QuantityError)
        }
    }

    /// The number of units.
    pub fn get(self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// A quantity is exactly 1 to 10,000, whatever integer a client sends.
        #[test]
        fn only_one_to_ten_thousand_is_a_quantity(value in proptest::num::i64::ANY) {
            proptest::prop_assert_eq!(
                Quantity::parse(value).is_ok(),
                (1..=MAX_QUANTITY).contains(&value)
            );
        }
    }

    #[test]
    fn accepts_one_to_ten_thousand_only() {
        assert!(Quantity::parse(1).is_ok());
        assert!(Quantity::parse(10_000).is_ok());
        assert_eq!(Quantity::parse(0), Err(QuantityError));
        assert_eq!(Quantity::parse(-3), Err(QuantityError));
        assert_eq!(Quantity::parse(10_001), Err(QuantityError));
    }
}
