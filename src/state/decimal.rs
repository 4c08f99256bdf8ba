//! The arithmetic of INCRBYFLOAT and HINCRBYFLOAT: decimal numbers of up to 36
//! significant digits, added exactly when they fit and rounded half to even when not.
//!
//! Redis adds in the C compiler's `long double` (80-bit on x86) and prints the sum with
//! 17 decimals, trailing zeros trimmed. A replicated state machine must compute the same
//! bytes on every replica whatever its CPU, so raftlock does not use the hardware's
//! floats: it adds in decimal and prints the same way. For what users type (`0.1`,
//! `-1.5`, `3.0e3`) the results are Redis's (`0.1 + 0.2` is `0.3`, as Redis's long double
//! also prints it); they differ only where Redis's binary rounding shows in the 17th
//! decimal of a large number (docs/redis-compat.md).

/// At most this many significant digits are kept (10^36 < i128::MAX / 2, so a sum fits).
const MAX_DIGITS: u32 = 36;
const MAX_MANTISSA: i128 = 10i128.pow(MAX_DIGITS);
/// Decimals printed before trailing zeros are trimmed (Redis's `%.17Lf`).
const PRINTED_DECIMALS: i32 = 17;
/// Beyond `long double`'s range (about 1.19e4932) the sum is infinite in Redis.
const MAX_EXPONENT: i32 = 4932;

/// `mantissa × 10^exponent`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Decimal {
    mantissa: i128,
    exponent: i32,
}

/// Why a number could not be used.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DecimalError {
    /// Not a number (Redis: "value is not a valid float").
    Invalid,
    /// Infinite, or a sum beyond `long double`'s range ("increment would produce NaN or
    /// Infinity").
    Infinite,
}

/// Divides by ten, rounding half to even.
fn div10_round(m: i128) -> i128 {
    let (q, r) = (m / 10, m % 10);
    let up = match r.abs() {
        6..=9 => true,
        5 => q % 2 != 0,
        _ => false,
    };
    if up {
        q + m.signum()
    } else {
        q
    }
}

impl Decimal {
    /// Parses what C's `strtold` reads in decimal: an optional sign, digits with an
    /// optional point, an optional exponent; `inf` and `infinity` are infinite. No spaces,
    /// nothing after the number (Redis's `string2ld`); hexadecimal floats are refused.
    pub(crate) fn parse(text: &[u8]) -> Result<Decimal, DecimalError> {
        let (negative, body) = match text.split_first() {
            Some((b'-', rest)) => (true, rest),
            Some((b'+', rest)) => (false, rest),
            _ => (false, text),
        };
        if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
            return Err(DecimalError::Infinite);
        }
        let (number, exponent_text) = match body.iter().position(|&b| b == b'e' || b == b'E') {
            Some(at) => (&body[..at], Some(&body[at + 1..])),
            None => (body, None),
        };
        let mut mantissa: i128 = 0;
        let mut exponent: i64 = 0;
        let mut digits = 0;
        let mut seen_point = false;
        for &byte in number {
            match byte {
                b'.' if !seen_point => seen_point = true,
                b'0'..=b'9' => {
                    digits += 1;
                    if mantissa < MAX_MANTISSA / 10 {
                        mantissa = mantissa * 10 + i128::from(byte - b'0');
                        if seen_point {
                            exponent -= 1;
                        }
                    } else if !seen_point {
                        // A digit beyond the precision kept: it only scales the number.
                        exponent += 1;
                    }
                }
                _ => return Err(DecimalError::Invalid),
            }
        }
        if digits == 0 {
            return Err(DecimalError::Invalid);
        }
        if let Some(text) = exponent_text {
            let (sign, digits) = match text.split_first() {
                Some((b'-', rest)) => (-1, rest),
                Some((b'+', rest)) => (1, rest),
                _ => (1, text),
            };
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Err(DecimalError::Invalid);
            }
            // Saturate: an exponent this large is infinite or zero either way.
            let value = digits.iter().fold(0i64, |acc, &d| {
                (acc * 10 + i64::from(d - b'0')).min(1_000_000)
            });
            exponent += sign * value;
        }
        let decimal = Decimal {
            mantissa: if negative { -mantissa } else { mantissa },
            exponent: exponent.clamp(-1_000_000, 1_000_000) as i32,
        };
        decimal.checked()
    }

    /// The number if it is finite in `long double` terms; a number too small for it is 0.
    fn checked(self) -> Result<Decimal, DecimalError> {
        if self.mantissa == 0 {
            return Ok(Decimal::ZERO);
        }
        let digits = self.mantissa.unsigned_abs().ilog10() as i32 + 1;
        if self.exponent + digits - 1 > MAX_EXPONENT {
            return Err(DecimalError::Infinite);
        }
        Ok(self)
    }

    const ZERO: Decimal = Decimal {
        mantissa: 0,
        exponent: 0,
    };

    /// The sum; an error when it leaves `long double`'s range.
    pub(crate) fn add(self, other: Decimal) -> Result<Decimal, DecimalError> {
        if self.mantissa == 0 {
            return other.checked();
        }
        if other.mantissa == 0 {
            return self.checked();
        }
        let (mut high, mut low) = if self.exponent >= other.exponent {
            (self, other)
        } else {
            (other, self)
        };
        // Bring both to one exponent: scale the higher one up while it stays within the
        // precision, then round the lower one.
        while high.exponent > low.exponent {
            if high.mantissa.abs() < MAX_MANTISSA / 10 {
                high.mantissa *= 10;
                high.exponent -= 1;
            } else if low.mantissa == 0 {
                low.exponent = high.exponent;
            } else {
                low.mantissa = div10_round(low.mantissa);
                low.exponent += 1;
            }
        }
        let mut sum = Decimal {
            mantissa: high.mantissa + low.mantissa,
            exponent: high.exponent,
        };
        while sum.mantissa.abs() >= MAX_MANTISSA {
            sum.mantissa = div10_round(sum.mantissa);
            sum.exponent += 1;
        }
        sum.checked()
    }

    /// Redis's human form: fixed notation rounded to 17 decimals, trailing zeros and a
    /// trailing point trimmed, never `-0`.
    pub(crate) fn render(self) -> String {
        let mut mantissa = self.mantissa;
        let mut exponent = self.exponent;
        while exponent < -PRINTED_DECIMALS {
            mantissa = div10_round(mantissa);
            exponent += 1;
        }
        while exponent < 0 && mantissa % 10 == 0 {
            mantissa /= 10;
            exponent += 1;
        }
        if mantissa == 0 {
            return "0".to_string();
        }
        let sign = if mantissa < 0 { "-" } else { "" };
        let digits = mantissa.unsigned_abs().to_string();
        if exponent >= 0 {
            return format!("{sign}{digits}{}", "0".repeat(exponent as usize));
        }
        let decimals = (-exponent) as usize;
        let padded = format!("{digits:0>width$}", width = decimals + 1);
        let (whole, fraction) = padded.split_at(padded.len() - decimals);
        format!("{sign}{whole}.{fraction}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(a: &str, b: &str) -> String {
        let a = Decimal::parse(a.as_bytes()).unwrap();
        let b = Decimal::parse(b.as_bytes()).unwrap();
        a.add(b).unwrap().render()
    }

    #[test]
    fn sums_print_as_redis_prints_them() {
        // The examples of Redis's INCRBYFLOAT page.
        assert_eq!(sum("10.50", "0.1"), "10.6");
        assert_eq!(sum("5.0e3", "2.0e2"), "5200");
        assert_eq!(sum("0.1", "0.2"), "0.3");
        assert_eq!(sum("10", "-10"), "0");
        assert_eq!(sum("-0.5", "0.25"), "-0.25");
        assert_eq!(sum("3", "1.5"), "4.5");
        assert_eq!(sum("1e-18", "0"), "0");
        assert_eq!(sum("6e-18", "0"), "0.00000000000000001");
        assert_eq!(sum("+7", ".5"), "7.5");
        assert_eq!(sum("1e20", "1"), "100000000000000000001");
    }

    #[test]
    fn digits_beyond_the_precision_are_rounded() {
        let big = "1".repeat(40);
        let rendered = sum(&big, "0");
        assert_eq!(rendered.len(), 40);
        assert!(rendered.starts_with(&"1".repeat(36)));
        assert!(rendered.ends_with("0000"));
        // Adding a tiny number to a huge one keeps the huge one.
        assert_eq!(sum("1e40", "1e-40"), format!("1{}", "0".repeat(40)));
    }

    #[test]
    fn bad_numbers_and_infinities_are_refused() {
        for bad in [
            "", "-", "1.2.3", " 1", "1 ", "abc", "1e", "1e+", "0x10", "nan", "1,5",
        ] {
            assert_eq!(
                Decimal::parse(bad.as_bytes()),
                Err(DecimalError::Invalid),
                "{bad:?}"
            );
        }
        for infinite in ["inf", "-Infinity", "1e5000"] {
            assert_eq!(
                Decimal::parse(infinite.as_bytes()),
                Err(DecimalError::Infinite),
                "{infinite:?}"
            );
        }
        assert_eq!(
            Decimal::parse(b"1e-6000").unwrap().render(),
            "0",
            "too small is zero"
        );
        let near_max = Decimal::parse(b"9e4932").unwrap();
        assert_eq!(near_max.add(near_max), Err(DecimalError::Infinite));
    }
}
