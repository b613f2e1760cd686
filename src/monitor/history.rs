//! The last samples of each process, for the dashboard's sparklines and `status --json`.

use std::collections::VecDeque;
use std::time::SystemTime;

use serde::{Serialize, Serializer};

/// Samples kept per instance: a minute at the default `sample_interval`.
const KEEP: usize = 60;

/// One point of a sparkline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct UsageSample {
    #[serde(serialize_with = "rfc3339")]
    pub time: SystemTime,
    pub cpu_percent: f64,
    pub rss_bytes: u64,
}

/// A bounded ring of samples, oldest first.
#[derive(Debug, Clone, Default)]
pub struct UsageHistory(VecDeque<UsageSample>);

impl UsageHistory {
    pub fn push(&mut self, time: SystemTime, cpu_percent: f64, rss_bytes: u64) {
        if self.0.len() == KEEP {
            self.0.pop_front();
        }
        self.0.push_back(UsageSample {
            time,
            cpu_percent: (cpu_percent * 10.0).round() / 10.0,
            rss_bytes,
        });
    }

    pub fn samples(&self) -> impl Iterator<Item = &UsageSample> {
        self.0.iter()
    }
}

fn rfc3339<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_millis(*t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_samples_in_order() {
        let mut h = UsageHistory::default();
        for i in 0..(KEEP as u64 + 5) {
            h.push(SystemTime::UNIX_EPOCH, i as f64, i);
        }
        let kept: Vec<u64> = h.samples().map(|s| s.rss_bytes).collect();
        assert_eq!(kept.len(), KEEP);
        assert_eq!(kept[0], 5);
        assert_eq!(*kept.last().unwrap(), KEEP as u64 + 4);
    }
}
