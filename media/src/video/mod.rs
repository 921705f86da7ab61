//! Video: H.264 over RTP and the keyframe requests that keep decoders fed.

pub mod h264_rtp;
pub mod keyframe_request;
