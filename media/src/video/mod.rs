//! Video: H.264 and VP8 in and out over RTP, and the composed CMS layouts.
//!
//! Like the audio path, each incoming stream is decoded once, each distinct
//! view (layout, size, whose self pane is skipped) is composed once, and each
//! view is encoded once per resolution class and shared by its receivers;
//! keyframe requests keep decoders fed without flooding encoders.

pub mod codec;
pub mod compose;
pub mod frame;
pub mod h264;
pub mod h264_rtp;
pub mod keyframe_request;
pub mod label;
pub mod layout;
pub mod reorder;
pub mod scale;
pub mod source_rate;
pub mod vp8;
pub mod vp8_rtp;
