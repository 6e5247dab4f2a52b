// ssdtrack: follows the regions of interest a detector attached from frame to frame and gives
// each object a persistent tracking id (DL Streamer's `object_id` structure).
#pragma once

#include <gst/base/gstbasetransform.h>
#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_SSD_TRACK (gst_ssd_track_get_type())
G_DECLARE_FINAL_TYPE(GstSsdTrack, gst_ssd_track, GST, SSD_TRACK, GstBaseTransform)

GST_ELEMENT_REGISTER_DECLARE(ssdtrack);

G_END_DECLS
