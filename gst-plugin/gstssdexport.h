// ssdexport: pass-through element writing the regions of interest of every frame as one JSON
// object per line (JSON Lines) to a file or stdout.
#pragma once

#include <gst/base/gstbasetransform.h>
#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_SSD_EXPORT (gst_ssd_export_get_type())
G_DECLARE_FINAL_TYPE(GstSsdExport, gst_ssd_export, GST, SSD_EXPORT, GstBaseTransform)

GST_ELEMENT_REGISTER_DECLARE(ssdexport);

G_END_DECLS
