//! Length-prefixed frames, typed messages (postcard) and COBS frames (work in progress).
