// ssdoverlay: draws every GstVideoRegionOfInterestMeta of a buffer (boxes and labels) onto the
// frame in place.
#pragma once

#include <gst/base/gstbasetransform.h>
#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_SSD_OVERLAY (gst_ssd_overlay_get_type())
G_DECLARE_FINAL_TYPE(GstSsdOverlay, gst_ssd_overlay, GST, SSD_OVERLAY, GstBaseTransform)

GST_ELEMENT_REGISTER_DECLARE(ssdoverlay);

G_END_DECLS
