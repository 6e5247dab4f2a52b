/* The public header (include/gst-ssd/ssdmeta.h) compiled as C, as an application in C uses it. */
#include "gst-ssd/ssdmeta.h"

gboolean ssdmeta_c_read_nth (GstBuffer * buffer, guint n, GstSsdDetection * out);

/* Reads the n-th region of interest of `buffer` into `out`; FALSE when it has fewer. */
gboolean
ssdmeta_c_read_nth (GstBuffer * buffer, guint n, GstSsdDetection * out)
{
  gpointer state = NULL;
  GstMeta *meta;
  guint i = 0;
  while ((meta = gst_buffer_iterate_meta_filtered (buffer, &state, GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE))) {
    if (i++ == n) {
      gst_ssd_detection_read ((GstVideoRegionOfInterestMeta *) meta, out);
      return TRUE;
    }
  }
  return FALSE;
}
