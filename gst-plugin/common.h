// Helpers shared by the ssd elements: the caps they accept, the YUV matrix of a video format,
// and reading GstVideoRegionOfInterestMeta (with the `detection` parameter structure that
// ssddetect writes, following DL Streamer's convention) from a buffer.
#pragma once

#include <cxxabi.h>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include <gst/base/gstbasetransform.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include "gst-ssd/ssdmeta.h"
#ifdef HAVE_GST_ANALYTICS
#include <gst/analytics/analytics.h>
#endif

namespace gstssd {

// Raw formats every ssd element accepts: packed RGB-family and the two common 4:2:0 YUVs.
#define GST_SSD_VIDEO_FORMATS "{ RGB, BGR, RGBx, BGRx, xRGB, xBGR, RGBA, BGRA, NV12, I420 }"
#define GST_SSD_VIDEO_CAPS GST_VIDEO_CAPS_MAKE(GST_SSD_VIDEO_FORMATS)

// Name of the GstStructure attached to each region of interest by ssddetect.
inline constexpr const char* kDetectionStructure = GST_SSD_DETECTION_STRUCTURE;
// Name of the GstStructure with the tracking id (int field `id`) that ssdtrack attaches to each
// region of interest: DL Streamer's convention (gvatrack writes the same).
inline constexpr const char* kObjectIdStructure = GST_SSD_OBJECT_ID_STRUCTURE;

// The colour matrix (Kr, Kb) and range of a YUV video; BT.601 limited range when the caps do
// not say (GStreamer's default for SD YUV), identity values for RGB formats.
struct YuvCoefficients {
  double kr = 0.299, kb = 0.114;
  bool full_range = false;
};
YuvCoefficients yuv_coefficients(const GstVideoInfo& info);

// One region of interest read back from a buffer.
struct RoiDetection {
  std::string label;          // from the `detection` structure, else the roi_type quark
  int label_id = -1;          // -1 when the producer did not give one
  double confidence = -1.0;   // -1 when the producer did not give one
  int object_id = -1;         // tracking id (the `object_id` structure), -1 when untracked
  bool carried = false;       // the `detection` structure's `carried`: a box ssddetect repeated
                              // from the last analysed frame (`interval`)
  int x = 0, y = 0, w = 0, h = 0;                             // pixels
  double x_min = 0, y_min = 0, x_max = 0, y_max = 0;          // normalised to [0, 1]
};

// Every GstVideoRegionOfInterestMeta of `buffer`, in meta order. The normalised box is taken
// from the `detection` structure when present, else computed from the pixel box and the frame
// size. Built against GStreamer >= 1.24, then also every GstAnalyticsODMtd of the buffer's
// relation meta that no region stands for (od_entries: GStreamer's own analytics producers,
// e.g. its tensor decoders, write only those): label from its object type, its confidence, no
// label id, and as object id the tracking id of a GstAnalyticsTrackingMtd it relates to.
std::vector<RoiDetection> read_rois(GstBuffer* buffer, int width, int height);

#ifdef HAVE_GST_ANALYTICS
// The object-detection entries of a relation meta (none without one), each with the index in
// `rois` of the region it stands for (as ssddetect writes one per region: the same object type
// and pixel box, each region taken once), or -1 for a detection with no region (GStreamer's own
// analytics producers write only those).
struct OdEntry {
  GstAnalyticsMtd mtd;
  int region = -1;
};
std::vector<OdEntry> od_entries(GstAnalyticsRelationMeta* rmeta, const std::vector<GstVideoRegionOfInterestMeta*>& rois);
#endif

// A rectangle of pixels.
struct Rect {
  int x = 0, y = 0, width = 0, height = 0;
};

// An in-place element forwards upstream's allocation query downstream, and so would offer
// upstream the support for GstVideoCropMeta of a sink behind it (xvimagesink, glimagesink):
// videocrop or a decoder would then send the uncropped frame with a crop meta instead of copying
// the picture out. The pixels could be read in place (picture_rect), but the regions of interest
// could not: videocrop leaves the regions an element before it attached in the uncropped frame's
// coordinates, and nothing tells them from those attached behind it, in the picture's. Removes
// the meta from the answer: upstream crops the frames (regions before it are dropped).
void refuse_crop_meta(GstQuery* allocation_query);

// A property that changes only in the NULL or READY state (GST_PARAM_MUTABLE_READY) is refused
// while the element runs (decided with the element's lock held, in the section that would
// write it), so that the value the element reports stays the one it runs with; the refusal is a
// warning on the bus (RESOURCE/SETTINGS) naming it, posted after the lock is let go (a bus
// handler may read properties). Setting the value it runs with again (a property editor's
// "apply", a binding syncing its state) is no change: no warning.
bool read_at_start(const GParamSpec* pspec);
void warn_read_at_start(GstElement* element, const GParamSpec* pspec, const GValue* value);

// Where a frame's picture lies in its buffer, in the buffer's pixels: the caps' size, at the
// origin or, for a buffer that comes with a GstVideoCropMeta all the same (refuse_crop_meta()),
// at the crop's offset; clipped to the buffer's frame (its GstVideoMeta's size, else the caps').
// Regions of interest are in the picture's coordinates.
Rect picture_rect(GstBuffer* buffer, const GstVideoInfo& info);

// The time between two frames at the caps' frame rate; GST_CLOCK_TIME_NONE for a variable one (0/1).
GstClockTime frame_duration(const GstVideoInfo& info);

// Why a video frame could not be mapped, for an error message: a buffer smaller than its caps'
// layout (GStreamer's default strides, rows padded to 4 bytes) names both sizes and what to do
// (an application pushing tightly packed rows of an odd width, say).
std::string map_failure(GstBuffer* buffer, const GstVideoInfo& info);

// Whether a sink event starts the stream afresh for an element that carries state from frame to
// frame (boxes, tracks): a stream start (concat, gapless playback), or a segment other than the
// one in use (a seek without a flush; called before GstBaseTransform takes it). A flush is the
// caller's to handle.
bool starts_afresh(GstBaseTransform* trans, GstEvent* event);

// GstBaseTransform's accept_caps for an element that passes its frames on as they come (the same
// caps on both pads): its templates, then, where the other pad is linked, that pad's peer, as
// identity does. A caps change an element further on refuses is then refused here, before the
// frames after it are taken in (a batching ssddetect in front would hold them; at EOS their push
// failed with nobody left to tell).
gboolean accept_caps_with_peer(GstBaseTransform* trans, GstPadDirection direction, GstCaps* caps);

// The per-frame vfunc boundary: runs `fn` and turns any exception into an element error
// "<what> failed: <reason>" and GST_FLOW_ERROR, so that none escapes into GStreamer. A thread
// being ended (pthread_exit: Python ends a thread that calls into it, a pad probe say, once the
// interpreter is finalising) unwinds through here: that goes on (swallowed, it aborted the
// process: "FATAL: exception not rethrown").
template <typename Fn>
GstFlowReturn run_frame_guarded(GstElement* element, const char* what, Fn&& fn) {
  try {
    return fn();
  } catch (abi::__forced_unwind&) {
    throw;
  } catch (const std::exception& e) {
    GST_ELEMENT_ERROR(element, STREAM, FAILED, ("%s failed: %s", what, e.what()), (nullptr));
  } catch (...) {
    GST_ELEMENT_ERROR(element, STREAM, FAILED, ("%s failed: unknown error", what), (nullptr));
  }
  return GST_FLOW_ERROR;
}

// Messages an element posts (and property notifications it sends) in the middle of a frame's
// work, held back until that work is done: an application's sync bus handler or notify handler
// runs in the thread that posts, and one that stops the element there (against GStreamer's
// advice, but it happens) would free what the rest of the frame's code uses. A HoldPosts opens
// at each vfunc (or step of an element's own thread) that may post; the outermost one of an
// element in a thread runs, in order, what after_frame() held for it, when it closes (nothing of
// the element's state may be used after that). after_frame() runs `post` at once where none is
// open (the element's own thread, stop()).
class HoldPosts {
 public:
  explicit HoldPosts(GstElement* element);
  ~HoldPosts();
  HoldPosts(const HoldPosts&) = delete;
  HoldPosts& operator=(const HoldPosts&) = delete;

 private:
  friend void after_frame(GstElement* element, std::function<void()> post);
  GstElement* element_;
  HoldPosts* outer_;                           // the one open before it in this thread, if any
  std::vector<std::function<void()>> posts_;   // held (by the element's outermost one only)
};
void after_frame(GstElement* element, std::function<void()> post);

}  // namespace gstssd
