//! Many writers, one ring: whole frames through a critical section (work in progress).
