//! `embedded_io` for streams and their halves, so code written against embedded-io
//! (for example the core's frame reader and writer) runs over a named pipe unchanged.
//!
//! Reads block until at least one byte arrives (`Ok(0)` is end of stream); writes never
//! return `Ok(0)` for a non-empty buffer. `ReadReady` polls without waiting; `WriteReady` is
//! always true (named pipes report no write readiness, see [`Stream::wait_writable`]).

use std::time::Duration;

use crate::stream::{OwnedReadHalf, OwnedWriteHalf, ReadHalf, WriteHalf};
use crate::{Error, Stream};

impl embedded_io::ErrorType for Stream {
    type Error = Error;
}

impl embedded_io::Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        self.recv(buf)
    }
}

impl embedded_io::Write for Stream {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Error> {
        self.send(buf)
    }

    fn flush(&mut self) -> Result<(), Error> {
        Ok(())
    }

    fn write_all(&mut self, buf: &[u8]) -> Result<(), Error> {
        self.send_all(buf)
    }
}

impl embedded_io::ReadReady for Stream {
    fn read_ready(&mut self) -> Result<bool, Error> {
        self.wait_readable(Some(Duration::ZERO))
    }
}

impl embedded_io::WriteReady for Stream {
    fn write_ready(&mut self) -> Result<bool, Error> {
        self.wait_writable(Some(Duration::ZERO))
    }
}

macro_rules! read_half {
    ($ty:ty) => {
        impl embedded_io::ErrorType for $ty {
            type Error = Error;
        }
        impl embedded_io::Read for $ty {
            fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
                self.stream().recv(buf)
            }
        }
        impl embedded_io::ReadReady for $ty {
            fn read_ready(&mut self) -> Result<bool, Error> {
                self.stream().wait_readable(Some(Duration::ZERO))
            }
        }
    };
}

macro_rules! write_half {
    ($ty:ty) => {
        impl embedded_io::ErrorType for $ty {
            type Error = Error;
        }
        impl embedded_io::Write for $ty {
            fn write(&mut self, buf: &[u8]) -> Result<usize, Error> {
                self.stream().send(buf)
            }
            fn flush(&mut self) -> Result<(), Error> {
                Ok(())
            }
            fn write_all(&mut self, buf: &[u8]) -> Result<(), Error> {
                self.stream().send_all(buf)
            }
        }
        impl embedded_io::WriteReady for $ty {
            fn write_ready(&mut self) -> Result<bool, Error> {
                self.stream().wait_writable(Some(Duration::ZERO))
            }
        }
    };
}

read_half!(ReadHalf<'_>);
read_half!(OwnedReadHalf);
write_half!(WriteHalf<'_>);
write_half!(OwnedWriteHalf);

#[cfg(test)]
mod tests {
    use embedded_io::{Read, ReadReady, Write, WriteReady};

    use crate::Stream;

    #[test]
    fn embedded_io_round_trip_and_readiness() {
        let (mut a, mut b) = Stream::pair().unwrap();
        assert!(!b.read_ready().unwrap());
        assert!(a.write_ready().unwrap());
        Write::write_all(&mut a, b"frame").unwrap();
        assert!(b.read_ready().unwrap());
        let mut buf = [0u8; 5];
        Read::read_exact(&mut b, &mut buf).unwrap();
        assert_eq!(&buf, b"frame");
        let (mut r, _w) = b.split();
        drop(a);
        assert!(r.read_ready().unwrap(), "end of stream is readable");
        assert_eq!(Read::read(&mut r, &mut buf).unwrap(), 0);
    }
}
