//! go-cty encodes a number as a msgpack int, a float, or (for big or non-integral values) a
//! decimal string. [`CtyNumber`] accepts all three and yields an integer, or says why not.

use serde::{Deserialize, Deserializer};

/// An integer attribute as go-cty may encode it: int, integral float, or decimal string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtyNumber(pub i64);

impl<'de> Deserialize<'de> for CtyNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = CtyNumber;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a whole number")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<CtyNumber, E> {
                Ok(CtyNumber(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<CtyNumber, E> {
                i64::try_from(v)
                    .map(CtyNumber)
                    .map_err(|_| E::custom(format!("number {v} is too large")))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<CtyNumber, E> {
                // 2^63 is exactly representable; anything at or beyond it does not fit.
                if v.fract() == 0.0
                    && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&v)
                {
                    #[allow(clippy::cast_possible_truncation)]
                    Ok(CtyNumber(v as i64))
                } else {
                    Err(E::custom(format!(
                        "number {v} is not a whole number in range"
                    )))
                }
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CtyNumber, E> {
                let t = v.trim();
                if let Ok(n) = t.parse::<i64>() {
                    return Ok(CtyNumber(n));
                }
                match t.parse::<f64>() {
                    Ok(f) if f.is_finite() => self.visit_f64(f),
                    _ => Err(E::custom(format!("{v:?} is not a number"))),
                }
            }
        }
        d.deserialize_any(V)
    }
}
