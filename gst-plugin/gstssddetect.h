// ssddetect: runs the SSD object detector on raw video and attaches the detections to each
// buffer as GstVideoRegionOfInterestMeta (and GstAnalyticsODMtd with GStreamer >= 1.24).
#pragma once

#include <gst/base/gstbasetransform.h>
#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_SSD_DETECT (gst_ssd_detect_get_type())
G_DECLARE_FINAL_TYPE(GstSsdDetect, gst_ssd_detect, GST, SSD_DETECT, GstBaseTransform)

#define GST_TYPE_SSD_PRECISION (gst_ssd_precision_get_type())
GType gst_ssd_precision_get_type(void);

typedef enum {
  GST_SSD_PRECISION_FP32 = 0,
  GST_SSD_PRECISION_FP16 = 1,
} GstSsdPrecision;

#define GST_TYPE_SSD_FRAME_POOL (gst_ssd_frame_pool_get_type())
GType gst_ssd_frame_pool_get_type(void);

typedef enum {
  GST_SSD_FRAME_POOL_AUTO = 0,     // page-locked frames offered on CUDA
  GST_SSD_FRAME_POOL_NEVER = 1,    // none offered
  GST_SSD_FRAME_POOL_ALWAYS = 2,   // offered on the CPU too (ordinary memory there)
} GstSsdFramePool;

GST_ELEMENT_REGISTER_DECLARE(ssddetect);

G_END_DECLS
