//! The last N lines of a process, for `warden logs` and the dashboard.
//!
//! Bounded by a line count fixed at creation; entries are shared (`Arc`) with the
//! broadcast, so keeping a line costs one pointer here. It never grows beyond its bound.

use std::collections::VecDeque;
use std::sync::Arc;

use super::LogLine;

#[derive(Debug)]
pub struct Ring {
    lines: VecDeque<Arc<LogLine>>,
    capacity: usize,
}

impl Ring {
    /// A ring of `capacity` lines; 0 keeps nothing. Memory is taken as lines arrive.
    pub fn new(capacity: usize) -> Ring {
        Ring {
            lines: VecDeque::new(),
            capacity,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn push(&mut self, line: Arc<LogLine>) {
        if self.capacity == 0 {
            return;
        }
        if self.lines.len() == self.capacity {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    /// The last `n` lines (fewer if fewer are kept), oldest first.
    pub fn tail(&self, n: usize) -> Vec<Arc<LogLine>> {
        let skip = self.lines.len().saturating_sub(n);
        self.lines.iter().skip(skip).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::super::Stream;
    use super::*;

    fn line(seq: u64) -> Arc<LogLine> {
        Arc::new(LogLine {
            seq,
            time: SystemTime::UNIX_EPOCH,
            stream: Stream::Stdout,
            text: seq.to_string().into_bytes().into_boxed_slice(),
            partial: false,
        })
    }

    fn seqs(lines: &[Arc<LogLine>]) -> Vec<u64> {
        lines.iter().map(|l| l.seq).collect()
    }

    #[test]
    fn keeps_the_last_n() {
        let mut ring = Ring::new(3);
        for seq in 1..=10 {
            ring.push(line(seq));
            assert!(ring.tail(usize::MAX).len() <= 3);
        }
        assert_eq!(seqs(&ring.tail(100)), [8, 9, 10]);
        assert_eq!(seqs(&ring.tail(2)), [9, 10]);
        assert!(ring.tail(0).is_empty());
    }

    #[test]
    fn tail_of_a_partly_filled_ring() {
        let mut ring = Ring::new(1000);
        ring.push(line(1));
        ring.push(line(2));
        assert_eq!(seqs(&ring.tail(5)), [1, 2]);
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let mut ring = Ring::new(0);
        ring.push(line(1));
        assert!(ring.tail(10).is_empty());
    }
}
