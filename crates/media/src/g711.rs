//! ITU-T G.711 A-law and µ-law, after the reference segment tables.

const SEG_A_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
const SEG_U_END: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
const BIAS: i32 = 0x84;
const CLIP: i32 = 8159;

fn segment(value: i32, ends: &[i32; 8]) -> usize {
    ends.iter().position(|&end| value <= end).unwrap_or(8)
}

/// A-law code of a 16-bit sample.
pub fn alaw_encode(sample: i16) -> u8 {
    let mut value = i32::from(sample) >> 3;
    let mask = if value >= 0 {
        0xD5
    } else {
        value = -value - 1;
        0x55
    };
    let seg = segment(value, &SEG_A_END);
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let mantissa = if seg < 2 {
        (value >> 1) & 0xF
    } else {
        (value >> seg) & 0xF
    };
    ((seg as i32) << 4 | mantissa) as u8 ^ mask
}

/// 16-bit sample of an A-law code.
pub fn alaw_decode(code: u8) -> i16 {
    let a = i32::from(code ^ 0x55);
    let mut t = (a & 0x0F) << 4;
    let seg = (a & 0x70) >> 4;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

/// µ-law code of a 16-bit sample.
pub fn ulaw_encode(sample: i16) -> u8 {
    let mut value = i32::from(sample) >> 2;
    let mask = if value < 0 {
        value = -value;
        0x7F
    } else {
        0xFF
    };
    value = value.min(CLIP) + (BIAS >> 2);
    let seg = segment(value, &SEG_U_END);
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    ((seg as i32) << 4 | ((value >> (seg + 1)) & 0xF)) as u8 ^ mask
}

/// 16-bit sample of a µ-law code.
pub fn ulaw_decode(code: u8) -> i16 {
    let u = i32::from(!code);
    let t = (((u & 0x0F) << 3) + BIAS) << ((u & 0x70) >> 4);
    (if u & 0x80 != 0 { BIAS - t } else { t - BIAS }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_values() {
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32_256);
        assert_eq!(alaw_decode(0x2A), -32_256);
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x80), 32_124);
        assert_eq!(ulaw_decode(0x00), -32_124);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
    }

    #[test]
    fn every_code_survives_a_round_trip() {
        for code in 0..=255u8 {
            assert_eq!(
                alaw_decode(alaw_encode(alaw_decode(code))),
                alaw_decode(code)
            );
            assert_eq!(
                ulaw_decode(ulaw_encode(ulaw_decode(code))),
                ulaw_decode(code)
            );
        }
    }

    #[test]
    fn quantisation_error_stays_within_the_segment_step() {
        for sample in (i16::MIN..=i16::MAX).step_by(7) {
            let a = i32::from(alaw_decode(alaw_encode(sample)));
            let u = i32::from(ulaw_decode(ulaw_encode(sample)));
            let s = i32::from(sample);
            assert!(
                (a - s).abs() <= 1024 && (a - s).abs() <= s.abs() / 16 + 16,
                "A-law {sample} -> {a}"
            );
            assert!(
                (u - s).abs() <= 1024 && (u - s).abs() <= s.abs() / 16 + 36,
                "µ-law {sample} -> {u}"
            );
        }
    }
}
