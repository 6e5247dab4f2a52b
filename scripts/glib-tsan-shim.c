// LD_PRELOAD shim for ThreadSanitizer runs (scripts/check-threads.sh): GLib's GMutex, GRecMutex,
// GRWLock and GCond use futexes directly, so TSan does not see the happens-before they give
// (GST_OBJECT_LOCK, a pad's stream lock). Wrapping the calls made into libglib through its PLT
// with TSan's acquire/release annotations lets TSan see them. Not instrumented itself; the TSan
// functions are weak so that uninstrumented child processes that inherit LD_PRELOAD still run.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <glib.h>

extern void __tsan_acquire(void* addr) __attribute__((weak));
extern void __tsan_release(void* addr) __attribute__((weak));
static inline void acq(void* a) { if (__tsan_acquire) __tsan_acquire(a); }
static inline void rel(void* a) { if (__tsan_release) __tsan_release(a); }

// The real function: the next definition, or that of a library loaded with RTLD_LOCAL (which
// RTLD_NEXT does not search) in a process that loaded GLib so.
static void* real(const char* name) {
  void* f = dlsym(RTLD_NEXT, name);
  static const char* const libs[] = {"libglib-2.0.so.0", "libgobject-2.0.so.0", "libgstreamer-1.0.so.0"};
  for (unsigned i = 0; !f && i < sizeof libs / sizeof libs[0]; ++i) {
    void* h = dlopen(libs[i], RTLD_LAZY | RTLD_NOLOAD);
    if (h) f = dlsym(h, name);
  }
  return f;
}
#define REAL(ret, name, ...)                                    \
  static ret (*real_##name)(__VA_ARGS__);                       \
  if (!real_##name) real_##name = (ret (*)(__VA_ARGS__))real(#name);

void g_mutex_lock(GMutex* m) { REAL(void, g_mutex_lock, GMutex*); real_g_mutex_lock(m); acq(m); }
void g_mutex_unlock(GMutex* m) { REAL(void, g_mutex_unlock, GMutex*); rel(m); real_g_mutex_unlock(m); }
gboolean g_mutex_trylock(GMutex* m) {
  REAL(gboolean, g_mutex_trylock, GMutex*);
  gboolean ok = real_g_mutex_trylock(m);
  if (ok) acq(m);
  return ok;
}
void g_rec_mutex_lock(GRecMutex* m) { REAL(void, g_rec_mutex_lock, GRecMutex*); real_g_rec_mutex_lock(m); acq(m); }
void g_rec_mutex_unlock(GRecMutex* m) { REAL(void, g_rec_mutex_unlock, GRecMutex*); rel(m); real_g_rec_mutex_unlock(m); }
gboolean g_rec_mutex_trylock(GRecMutex* m) {
  REAL(gboolean, g_rec_mutex_trylock, GRecMutex*);
  gboolean ok = real_g_rec_mutex_trylock(m);
  if (ok) acq(m);
  return ok;
}
void g_rw_lock_writer_lock(GRWLock* l) { REAL(void, g_rw_lock_writer_lock, GRWLock*); real_g_rw_lock_writer_lock(l); acq(l); }
void g_rw_lock_writer_unlock(GRWLock* l) { REAL(void, g_rw_lock_writer_unlock, GRWLock*); rel(l); real_g_rw_lock_writer_unlock(l); }
void g_rw_lock_reader_lock(GRWLock* l) { REAL(void, g_rw_lock_reader_lock, GRWLock*); real_g_rw_lock_reader_lock(l); acq(l); }
void g_rw_lock_reader_unlock(GRWLock* l) { REAL(void, g_rw_lock_reader_unlock, GRWLock*); rel(l); real_g_rw_lock_reader_unlock(l); }
void g_cond_wait(GCond* c, GMutex* m) { REAL(void, g_cond_wait, GCond*, GMutex*); rel(m); real_g_cond_wait(c, m); acq(m); }
gboolean g_cond_wait_until(GCond* c, GMutex* m, gint64 t) {
  REAL(gboolean, g_cond_wait_until, GCond*, GMutex*, gint64);
  rel(m);
  gboolean r = real_g_cond_wait_until(c, m, t);
  acq(m);
  return r;
}

// Reference counts (atomics inside GLib/GStreamer): each unref releases, the last one acquires
// before the object is finalised, as std::shared_ptr's count does for TSan.
#include <glib-object.h>
#include <gst/gst.h>
#include <stdlib.h>

void g_object_unref(gpointer object) {
  REAL(void, g_object_unref, gpointer);
  if (object) {
    rel(object);
    if (g_atomic_int_get(&((GObject*)object)->ref_count) == 1) acq(object);
  }
  real_g_object_unref(object);
}
void gst_mini_object_unref(GstMiniObject* mo) {
  REAL(void, gst_mini_object_unref, GstMiniObject*);
  if (mo) {
    rel(mo);
    if (GST_MINI_OBJECT_REFCOUNT_VALUE(mo) == 1) acq(mo);
  }
  real_gst_mini_object_unref(mo);
}

// gst_element_call_async(): the function runs in a thread of GStreamer's pool after the call.
struct AsyncCall {
  GstElementCallAsyncFunc func;
  gpointer user_data;
  GDestroyNotify destroy;
};
static void async_call(GstElement* element, gpointer data) {
  struct AsyncCall* c = data;
  acq(c);
  c->func(element, c->user_data);
}
static void async_destroy(gpointer data) {
  struct AsyncCall* c = data;
  acq(c);
  if (c->destroy) c->destroy(c->user_data);
  free(c);
}
void gst_element_call_async(GstElement* element, GstElementCallAsyncFunc func, gpointer user_data,
                            GDestroyNotify destroy_notify) {
  REAL(void, gst_element_call_async, GstElement*, GstElementCallAsyncFunc, gpointer, GDestroyNotify);
  struct AsyncCall* c = malloc(sizeof *c);
  c->func = func;
  c->user_data = user_data;
  c->destroy = destroy_notify;
  rel(c);
  real_gst_element_call_async(element, async_call, c, async_destroy);
}

// GAsyncQueue (GstHarness's queues of buffers, events and queries): what is pushed was made
// before it is popped. (Its lock is taken inside GLib, which the wrappers above do not see.)
void g_async_queue_push(GAsyncQueue* q, gpointer data) {
  REAL(void, g_async_queue_push, GAsyncQueue*, gpointer);
  rel(data);
  real_g_async_queue_push(q, data);
}
gpointer g_async_queue_pop(GAsyncQueue* q) {
  REAL(gpointer, g_async_queue_pop, GAsyncQueue*);
  gpointer d = real_g_async_queue_pop(q);
  if (d) acq(d);
  return d;
}
gpointer g_async_queue_try_pop(GAsyncQueue* q) {
  REAL(gpointer, g_async_queue_try_pop, GAsyncQueue*);
  gpointer d = real_g_async_queue_try_pop(q);
  if (d) acq(d);
  return d;
}
gpointer g_async_queue_timeout_pop(GAsyncQueue* q, guint64 timeout) {
  REAL(gpointer, g_async_queue_timeout_pop, GAsyncQueue*, guint64);
  gpointer d = real_g_async_queue_timeout_pop(q, timeout);
  if (d) acq(d);
  return d;
}
