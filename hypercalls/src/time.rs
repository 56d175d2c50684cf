//! Calendar arithmetic for the wall clock (the RTC gives a date, Xen's
//! shared_info wants seconds since the Unix epoch).

/// Seconds since 1970-01-01 00:00:00 UTC for a proleptic Gregorian date and time.
pub fn unix_time(year: u64, month: u64, day: u64, hour: u64, min: u64, sec: u64) -> u64 {
    // Days from civil (Howard Hinnant's algorithm), shifted so March is month 0.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + hour * 3600 + min * 60 + sec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(unix_time(1970, 1, 1, 0, 0, 0), 0);
        assert_eq!(unix_time(2000, 3, 1, 0, 0, 0), 951_868_800);
        assert_eq!(unix_time(2026, 11, 25, 6, 30, 15), 1_795_588_215);
        assert_eq!(unix_time(2024, 2, 29, 23, 59, 59), 1_709_251_199);
    }
}
