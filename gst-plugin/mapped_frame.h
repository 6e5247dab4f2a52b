// RAII guard over gst_video_frame_map()/gst_video_frame_unmap(), in the spirit of WebKit's
// GstMappedBuffer/GstMappedFrame: a frame is only ever mapped through this class, so every
// return path (including exceptions) unmaps it.
//
//   VideoFrameMap frame(&info, buffer, GST_MAP_READ);
//   if (!frame) { ...error... }
//   const guint8* y = frame.plane(0); int stride = frame.stride(0);
//
// The plane pointers and strides come from the buffer's GstVideoMeta when it has one, so
// padded strides and plane offsets chosen upstream are honoured.
#pragma once

#include <gst/gst.h>
#include <gst/video/video.h>

namespace gstssd {

class VideoFrameMap {
 public:
  VideoFrameMap(const GstVideoInfo* info, GstBuffer* buffer, GstMapFlags flags) {
    // gst_video_frame_map() takes a non-const info but does not modify it.
    mapped_ = gst_video_frame_map(&frame_, const_cast<GstVideoInfo*>(info), buffer, flags);
  }
  ~VideoFrameMap() {
    if (mapped_) gst_video_frame_unmap(&frame_);
  }
  VideoFrameMap(const VideoFrameMap&) = delete;
  VideoFrameMap& operator=(const VideoFrameMap&) = delete;

  explicit operator bool() const { return mapped_; }
  bool valid() const { return mapped_; }

  GstVideoFrame* get() { return &frame_; }
  GstBuffer* buffer() const { return frame_.buffer; }
  const GstVideoInfo& info() const { return frame_.info; }
  GstVideoFormat format() const { return GST_VIDEO_FRAME_FORMAT(&frame_); }
  int width() const { return GST_VIDEO_FRAME_WIDTH(&frame_); }
  int height() const { return GST_VIDEO_FRAME_HEIGHT(&frame_); }
  int n_planes() const { return GST_VIDEO_FRAME_N_PLANES(&frame_); }
  guint8* plane(int i) const { return static_cast<guint8*>(GST_VIDEO_FRAME_PLANE_DATA(&frame_, i)); }
  int stride(int i) const { return GST_VIDEO_FRAME_PLANE_STRIDE(&frame_, i); }

 private:
  GstVideoFrame frame_{};
  bool mapped_ = false;
};

}  // namespace gstssd
