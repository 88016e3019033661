//! Byte chunks → lines, for logs, exec output and build progress.

/// Accumulates bytes and yields complete lines (without `\n` / `\r\n`).
#[derive(Debug, Default, Clone)]
pub(crate) struct LineSplitter {
    buf: Vec<u8>,
}

impl LineSplitter {
    pub(crate) fn push(&mut self, data: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for &b in data {
            if b == b'\n' {
                let mut line = std::mem::take(&mut self.buf);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                out.push(String::from_utf8_lossy(&line).into_owned());
            } else {
                self.buf.push(b);
            }
        }
        out
    }

    /// The unterminated remainder, if any.
    pub(crate) fn finish(&mut self) -> Option<String> {
        if self.buf.is_empty() {
            None
        } else {
            let line = std::mem::take(&mut self.buf);
            Some(String::from_utf8_lossy(&line).into_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_across_chunks() {
        let mut s = LineSplitter::default();
        assert_eq!(s.push(b"a\nb"), vec!["a"]);
        assert_eq!(s.push(b"c\r\n\nd"), vec!["bc", ""]);
        assert_eq!(s.finish(), Some("d".to_string()));
        assert_eq!(s.finish(), None);
    }
}
