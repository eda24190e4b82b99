/* C glue of nghttp2_cffi: callbacks that stay in C, batched events, bodies
 * served from memory, and one place that settles libnghttp2 version
 * differences.  Declarations Python sees are in glue.cdef.h. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <nghttp2/nghttp2.h>

/* N2C_PROBED_* come from build_ffi.py, which looks for each function in the
 * nghttp2.h being compiled against: distributions backport security options
 * (Debian 12's 1.52 has the rapid-reset and CONTINUATION limits) without
 * changing NGHTTP2_VERSION_NUM, so the version alone would under-report. */
#if NGHTTP2_VERSION_NUM >= 0x013d00 /* 1.61.0: the nghttp2_ssize API */
#define N2C_HAS_SSIZE_API 1
#else
#define N2C_HAS_SSIZE_API 0
#endif
#define N2C_HAS_STREAM_RESET_RATE_LIMIT N2C_PROBED_STREAM_RESET_RATE_LIMIT
#define N2C_HAS_MAX_CONTINUATIONS N2C_PROBED_MAX_CONTINUATIONS
#define N2C_HAS_MAX_SETTINGS N2C_PROBED_MAX_SETTINGS
#define N2C_HAS_MAX_OUTBOUND_ACK N2C_PROBED_MAX_OUTBOUND_ACK
#define N2C_HAS_NO_RFC9113_WS_VALIDATION N2C_PROBED_NO_RFC9113_WS_VALIDATION
#define N2C_HAS_SERVER_FALLBACK_RFC7540_PRIORITIES \
  N2C_PROBED_SERVER_FALLBACK_RFC7540_PRIORITIES
#define N2C_HAS_EXTPRI_GET N2C_PROBED_EXTPRI_GET
#define N2C_HAS_EXTPRI_PARSE N2C_PROBED_EXTPRI_PARSE

#define N2C_EV_WORDS 6
#define N2C_EV_HEADERS 1        /* a=category b=end_stream c=off d=len */
#define N2C_EV_DATA 2           /* a=end_stream b=in_input c=off d=len */
#define N2C_EV_RST_STREAM 3     /* a=error_code */
#define N2C_EV_STREAM_CLOSED 4  /* a=error_code */
#define N2C_EV_SETTINGS 5       /* a=ack c=off d=len (6 bytes per entry) */
#define N2C_EV_PING 6           /* a=ack c=off d=len (8 bytes) */
#define N2C_EV_GOAWAY 7         /* a=last_stream_id b=error_code c=off d=len */
#define N2C_EV_PUSH_PROMISE 8   /* a=promised_stream_id c=off d=len */
#define N2C_EV_WINDOW_UPDATE 9  /* a=increment */
#define N2C_EV_WANT_DATA 10     /* a=bytes nghttp2 asked for */
#define N2C_EV_GOAWAY_SENT 11   /* a=last_stream_id b=error_code */
/* An RFC 9218 Priority field value: a=0 from a request's `priority` header
 * field (only where nghttp2 cannot be asked for the stream's priority),
 * a=1 from a PRIORITY_UPDATE frame; c=off d=len. */
#define N2C_EV_PRIORITY 12
/* An event dropped after it was queued (a request the server resets before
 * Python saw it): Python skips it. */
#define N2C_EV_NONE 0

#define N2C_BODY_NONE 0
#define N2C_BODY_PROVIDER 1

#if N2C_HAS_SSIZE_API
typedef nghttp2_ssize n2c_ssize;
#else
typedef ssize_t n2c_ssize;
#endif

/* A piece of an outgoing body.  The bytes belong to Python, which keeps
 * them alive for as long as C holds the piece (see n2c_provide). */
typedef struct {
  const uint8_t *data;
  size_t len;
} n2c_chunk;

#define N2C_INLINE_CHUNKS 2

/* One outgoing body: the pieces not sent yet, read in order. */
typedef struct n2c_stream {
  struct n2c_stream *prev, *next;
  int32_t stream_id; /* 0 until known (a request's id comes from submit) */
  n2c_chunk *chunks; /* [head, count) are held; chunks[head] from pos on */
  size_t head, count, cap;
  size_t pos;
  size_t avail;      /* bytes held, not sent yet */
  int eof;           /* no piece follows the held ones */
  int waiting;       /* asked Python for more (N2C_EV_WANT_DATA) */
  uint8_t *trailers; /* malloc'd NUL-joined block, or NULL */
  size_t trailers_len, ntrailers;
  n2c_chunk inline_chunks[N2C_INLINE_CHUNKS];
} n2c_stream;

/* How many of the peer's latest streams the closed-stream record covers
 * (RFC 9113 section 5.1): 2,048, in two bitmaps of 256 bytes each. */
#define N2C_SID_WINDOW 2048
#define N2C_SID_WORDS (N2C_SID_WINDOW / 64)

typedef struct {
  int64_t *ev;
  size_t ev_len, ev_cap;
  char *pl;
  size_t pl_len, pl_cap;
  char *out;
  size_t out_len, out_cap;
  nghttp2_session *session;
  const uint8_t *in; /* the buffer n2c_recv is reading, for zero-copy DATA */
  size_t in_len;
  size_t hdr_off;    /* where the header block being received starts in pl */
  int hdr_open;      /* a header block is being received (may span calls) */
  int moved;         /* ev, pl or out was reallocated since the last return */
  size_t limit;      /* of the n2c_send running */
  n2c_stream streams; /* list head of live bodies */
  /* Defences (n2c_set_limits).  A breach sets `flooded`: the callback fails,
   * mem_recv stops, and n2c_recv ends the session with ENHANCE_YOUR_CALM. */
  size_t max_header_list; /* 0: none */
  size_t hdr_size;        /* of the header block being received */
  int64_t glitch_burst;   /* in milli-tokens; 0: no bucket */
  int64_t glitch_rate;    /* milli-tokens per millisecond = tokens per second */
  int64_t glitch_tokens;
  int64_t glitch_ms;      /* when the bucket was last refilled */
  size_t continuations;   /* of the header block being received */
  int quiet_window_updates; /* no WINDOW_UPDATE events */
  int flooded;
  int server;
  /* n2c_recv hands nghttp2 one frame at a time: where the input stands. */
  size_t fr_skip;       /* bytes of the client connection preface to come */
  uint8_t fr_hd[9];     /* the next frame's header, as far as it came */
  size_t fr_hd_len;
  size_t fr_left;       /* payload bytes of the current frame to come */
  int32_t data_sid;     /* a DATA frame nghttp2 began and did not receive */
  int32_t batch_min_sid; /* first request HEADERS event of this n2c_recv */
  int32_t rst_sid;      /* the stream of the last RST_STREAM received */
  /* The peer's streams (server side): the highest id it opened, and for the
   * N2C_SID_WINDOW ids below it which were used and which closed in a way
   * that makes a later DATA or HEADERS on them a connection error. */
  int32_t peer_max_sid;
  uint64_t sid_used[N2C_SID_WORDS];
  uint64_t sid_closed[N2C_SID_WORDS];
} n2c_session;

typedef struct {
  int64_t *lens;
  size_t nlens, lens_cap;
  char *pl;
  size_t pl_len, pl_cap;
  nghttp2_hd_inflater *inflater;
} n2c_inflater;

/* ---- growable buffers ---------------------------------------------------- */

static int n2c_reserve(void **buf, size_t *cap, size_t need, size_t unit) {
  size_t ncap;
  void *p;
  if (need <= *cap) {
    return 0;
  }
  ncap = *cap ? *cap : 256;
  while (ncap < need) {
    ncap *= 2;
  }
  p = realloc(*buf, ncap * unit);
  if (p == NULL) {
    return -1;
  }
  *buf = p;
  *cap = ncap;
  return 0;
}

/* n2c_reserve for a session buffer: notes in s->moved that Python's view of
 * the buffers is stale.  A view spans the capacity, so a buffer grown in
 * place (same pointer, larger capacity) makes it stale too. */
static int n2c_grow(n2c_session *s, void **buf, size_t *cap, size_t need,
                    size_t unit) {
  void *old = *buf;
  size_t oldcap = *cap;
  if (n2c_reserve(buf, cap, need, unit) != 0) {
    return -1;
  }
  if (*buf != old || *cap != oldcap) {
    s->moved = 1;
  }
  return 0;
}

static int n2c_put_bytes(n2c_session *s, const uint8_t *p, size_t n) {
  if (n2c_grow(s, (void **)&s->pl, &s->pl_cap, s->pl_len + n, 1) != 0) {
    return -1;
  }
  if (n) {
    memcpy(s->pl + s->pl_len, p, n);
  }
  s->pl_len += n;
  return 0;
}

static int n2c_event(n2c_session *s, int64_t kind, int64_t stream_id,
                     int64_t a, int64_t b, int64_t c, int64_t d) {
  int64_t *e;
  if (n2c_grow(s, (void **)&s->ev, &s->ev_cap, s->ev_len + N2C_EV_WORDS,
               sizeof(int64_t)) != 0) {
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  e = s->ev + s->ev_len;
  e[0] = kind;
  e[1] = stream_id;
  e[2] = a;
  e[3] = b;
  e[4] = c;
  e[5] = d;
  s->ev_len += N2C_EV_WORDS;
  return 0;
}

/* An event whose payload is copied into pl. */
static int n2c_event_pl(n2c_session *s, int64_t kind, int64_t stream_id,
                        int64_t a, int64_t b, const uint8_t *p, size_t n) {
  size_t off = s->pl_len;
  if (n2c_put_bytes(s, p, n) != 0) {
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  return n2c_event(s, kind, stream_id, a, b, (int64_t)off, (int64_t)n);
}

/* ---- header blocks in and out -------------------------------------------- */

/* Point nva at the fields of a NUL-joined block.  Fails on a field count that
 * does not match, which is also how a NUL inside a name or value shows. */
static int n2c_parse_nv(nghttp2_nv *nva, const char *hdrs, size_t len,
                        size_t nfields) {
  const uint8_t *p = (const uint8_t *)hdrs, *end = p + len, *q;
  size_t i, k;
  if (nfields == 0) {
    return len == 0 ? 0 : NGHTTP2_ERR_INVALID_ARGUMENT;
  }
  for (i = 0; i < nfields; ++i) {
    for (k = 0; k < 2; ++k) {
      int last = (i == nfields - 1 && k == 1);
      q = last ? end : memchr(p, 0, (size_t)(end - p));
      if (q == NULL || (last && memchr(p, 0, (size_t)(end - p)) != NULL)) {
        return NGHTTP2_ERR_INVALID_ARGUMENT;
      }
      if (k == 0) {
        nva[i].name = (uint8_t *)p;
        nva[i].namelen = (size_t)(q - p);
      } else {
        nva[i].value = (uint8_t *)p;
        nva[i].valuelen = (size_t)(q - p);
      }
      p = q + 1;
    }
    nva[i].flags = NGHTTP2_NV_FLAG_NONE;
  }
  return 0;
}

#define N2C_STACK_NV 32

/* Declares `nva`, on the stack when small; `N2C_NV_END` frees it. */
#define N2C_NV_BEGIN(hdrs, len, nfields)                                     \
  nghttp2_nv nva_stack[N2C_STACK_NV];                                         \
  nghttp2_nv *nva = nva_stack;                                                \
  int nv_rv;                                                                  \
  if ((nfields) > N2C_STACK_NV) {                                             \
    nva = malloc(sizeof(nghttp2_nv) * (nfields));                            \
    if (nva == NULL) {                                                        \
      return NGHTTP2_ERR_NOMEM;                                               \
    }                                                                         \
  }                                                                           \
  nv_rv = n2c_parse_nv(nva, hdrs, len, nfields);                              \
  if (nv_rv != 0) {                                                           \
    if (nva != nva_stack) {                                                   \
      free(nva);                                                              \
    }                                                                         \
    return nv_rv;                                                             \
  }
#define N2C_NV_END                                                            \
  if (nva != nva_stack) {                                                     \
    free(nva);                                                                \
  }

/* ---- bodies -------------------------------------------------------------- */

/* Hold one more piece; the number of pieces held, or a negative error. */
static int n2c_stream_push(n2c_stream *st, const char *data, size_t len) {
  if (len == 0) {
    return (int)(st->count - st->head);
  }
  if (st->head == st->count) {
    st->head = st->count = st->pos = 0;
  }
  if (st->count == st->cap) {
    size_t held = st->count - st->head;
    if (st->head > 0) { /* reuse the room of the pieces already sent */
      memmove(st->chunks, st->chunks + st->head, held * sizeof(n2c_chunk));
    } else {
      size_t ncap = st->cap * 2;
      n2c_chunk *p = malloc(ncap * sizeof(n2c_chunk));
      if (p == NULL) {
        return NGHTTP2_ERR_NOMEM;
      }
      memcpy(p, st->chunks, held * sizeof(n2c_chunk));
      if (st->chunks != st->inline_chunks) {
        free(st->chunks);
      }
      st->chunks = p;
      st->cap = ncap;
    }
    st->head = 0;
    st->count = held;
  }
  st->chunks[st->count].data = (const uint8_t *)data;
  st->chunks[st->count].len = len;
  ++st->count;
  st->avail += len;
  return (int)(st->count - st->head);
}

static n2c_stream *n2c_stream_new(n2c_session *s, const char *body,
                                  size_t len, int eof) {
  n2c_stream *st = calloc(1, sizeof(n2c_stream));
  if (st == NULL) {
    return NULL;
  }
  st->chunks = st->inline_chunks;
  st->cap = N2C_INLINE_CHUNKS;
  if (body) {
    n2c_stream_push(st, body, len); /* cannot fail: there is room */
  }
  st->eof = eof;
  st->next = s->streams.next;
  st->prev = &s->streams;
  s->streams.next->prev = st;
  s->streams.next = st;
  return st;
}

/* A stream's body.  A request's stream exists in nghttp2 only once its
 * HEADERS are sent, so until then it is found in the list. */
static n2c_stream *n2c_find_stream(n2c_session *s, int32_t stream_id) {
  n2c_stream *st = nghttp2_session_get_stream_user_data(s->session, stream_id);
  if (st == NULL) {
    for (st = s->streams.next; st != &s->streams; st = st->next) {
      if (st->stream_id == stream_id) {
        return st;
      }
    }
    return NULL;
  }
  return st;
}

static void n2c_stream_free(n2c_stream *st) {
  st->prev->next = st->next;
  st->next->prev = st->prev;
  if (st->chunks != st->inline_chunks) {
    free(st->chunks);
  }
  free(st->trailers);
  free(st);
}

/* nghttp2 asks for a DATA frame's payload: say how much there is; the bytes
 * stay where they are (NO_COPY) until n2c_send_data writes the frame. */
static n2c_ssize n2c_read(nghttp2_session *session, int32_t stream_id,
                          uint8_t *buf, size_t length, uint32_t *data_flags,
                          nghttp2_data_source *source, void *user_data) {
  n2c_session *s = user_data;
  n2c_stream *st = source->ptr;
  size_t n = st->avail;
  (void)buf;
  if (n == 0 && !st->eof) {
    if (!st->waiting) {
      st->waiting = 1;
      if (n2c_event(s, N2C_EV_WANT_DATA, stream_id, (int64_t)length, 0, 0,
                    0) != 0) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
      }
    }
    return NGHTTP2_ERR_DEFERRED;
  }
  if (n > length) {
    n = length;
  }
  if (n) {
    *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  }
  if (st->eof && n == st->avail) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    if (st->trailers != NULL) {
      int rv;
      N2C_NV_BEGIN((const char *)st->trailers, st->trailers_len,
                   st->ntrailers)
      rv = nghttp2_submit_trailer(session, stream_id, nva, st->ntrailers);
      N2C_NV_END
      if (rv == 0) {
        *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      }
    }
  }
  return (n2c_ssize)n;
}

/* The DATA frame n2c_read sized: appended to s->out, as
 * nghttp2_session_mem_send would have returned it, with `length` bytes
 * taken from the pieces held (nghttp2 writes one frame at a time, so they
 * are the ones n2c_read saw). */
static int n2c_send_data(nghttp2_session *session, nghttp2_frame *frame,
                         const uint8_t *framehd, size_t length,
                         nghttp2_data_source *source, void *user_data) {
  n2c_session *s = user_data;
  n2c_stream *st = source->ptr;
  size_t padlen = frame->data.padlen;
  uint8_t *p;
  (void)session;
  if (s->limit && s->out_len >= s->limit) {
    return NGHTTP2_ERR_WOULDBLOCK; /* called again by the next n2c_send */
  }
  if (n2c_grow(s, (void **)&s->out, &s->out_cap,
               s->out_len + 9 + length + padlen, 1) != 0) {
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  p = (uint8_t *)s->out + s->out_len;
  memcpy(p, framehd, 9);
  p += 9;
  if (padlen > 0) {
    *p++ = (uint8_t)(padlen - 1);
  }
  st->avail -= length;
  while (length) {
    n2c_chunk *c = &st->chunks[st->head];
    size_t n = c->len - st->pos;
    if (n > length) {
      n = length;
    }
    memcpy(p, c->data + st->pos, n);
    p += n;
    length -= n;
    st->pos += n;
    if (st->pos == c->len) {
      ++st->head;
      st->pos = 0;
    }
  }
  if (padlen > 1) {
    memset(p, 0, padlen - 1);
    p += padlen - 1;
  }
  s->out_len = (size_t)(p - (uint8_t *)s->out);
  return 0;
}

#if N2C_HAS_SSIZE_API
#define N2C_PROVIDER nghttp2_data_provider2
#define N2C_SUBMIT_REQUEST nghttp2_submit_request2
#define N2C_SUBMIT_RESPONSE nghttp2_submit_response2
#else
#define N2C_PROVIDER nghttp2_data_provider
#define N2C_SUBMIT_REQUEST nghttp2_submit_request
#define N2C_SUBMIT_RESPONSE nghttp2_submit_response
#endif

/* ---- session callbacks --------------------------------------------------- */

static int n2c_on_begin_headers(nghttp2_session *session,
                                const nghttp2_frame *frame, void *user_data) {
  n2c_session *s = user_data;
  (void)session;
  (void)frame;
  s->hdr_off = s->pl_len;
  s->hdr_open = 1;
  s->hdr_size = 0;
  s->continuations = 0;
  return 0;
}

/* ---- defences ------------------------------------------------------------- */

static int64_t n2c_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A frame that costs work and carries little: `milli` thousandths of a
 * token.  Returns nonzero once the bucket is empty: the session is then
 * flooded. */
static int n2c_glitch_cost(n2c_session *s, int64_t milli) {
  int64_t now;
  if (s->glitch_burst == 0) {
    return 0;
  }
  now = n2c_now_ms();
  s->glitch_tokens += (now - s->glitch_ms) * s->glitch_rate;
  if (s->glitch_tokens > s->glitch_burst) {
    s->glitch_tokens = s->glitch_burst;
  }
  s->glitch_ms = now;
  s->glitch_tokens -= milli;
  if (s->glitch_tokens < 0) {
    s->flooded = 1;
    return 1;
  }
  return 0;
}

/* One frame that costs work and carries none: a whole token. */
static int n2c_glitch(n2c_session *s) { return n2c_glitch_cost(s, 1000); }

/* A DATA frame that does not end its stream and carries fewer bytes than
 * this costs (N2C_TINY_DATA - length) / 8 thousandths of a token: 1,000,000
 * one-byte frames (6.7 s of server CPU) end after ~32,000 of them, while a
 * stream of small messages may send ~3,000 a second without end, more the
 * larger they are; 256 is where h2 (hyper, granian) draws the line too.
 * Full-size frames and every stream's last frame cost nothing. */
#define N2C_TINY_DATA 256

/* The request of `sid` will not be answered: nghttp2 resets it because of
 * the peer (CVE-2025-8671, MadeYouReset).  It counts as a glitch, and its
 * events of this n2c_recv are dropped, so that no handler starts for it.
 * Scanning back stops at its request HEADERS, or at an earlier stream's,
 * before which its own cannot be. */
static int n2c_peer_fault(n2c_session *s, int32_t sid) {
  size_t i;
  if (sid >= s->batch_min_sid && s->batch_min_sid > 0) {
    for (i = s->ev_len; i >= N2C_EV_WORDS; i -= N2C_EV_WORDS) {
      int64_t *e = s->ev + i - N2C_EV_WORDS;
      if (e[0] == N2C_EV_HEADERS && e[2] == NGHTTP2_HCAT_REQUEST &&
          e[1] <= sid) {
        if (e[1] == sid) {
          e[0] = N2C_EV_NONE;
        }
        break;
      }
      if (e[1] == sid &&
          (e[0] == N2C_EV_DATA || e[0] == N2C_EV_HEADERS ||
           e[0] == N2C_EV_PRIORITY)) {
        if (e[0] == N2C_EV_DATA && e[5] > 0) {
          /* Nobody will see these bytes to consume them: the connection's
           * window opens here (fails harmlessly with auto window updates). */
          nghttp2_session_consume_connection(s->session, (size_t)e[5]);
        }
        e[0] = N2C_EV_NONE;
      }
    }
  }
  return n2c_glitch(s);
}

#if !N2C_HAS_MAX_CONTINUATIONS
/* libnghttp2 without nghttp2_option_set_max_continuations: count them here. */
#define N2C_MAX_CONTINUATIONS 8
#endif

static int n2c_on_begin_frame(nghttp2_session *session,
                              const nghttp2_frame_hd *hd, void *user_data) {
  n2c_session *s = user_data;
  (void)session;
  /* Called for DATA only when nghttp2 will read it: its stream is open. */
  if (hd->type == NGHTTP2_DATA) {
    s->data_sid = hd->stream_id;
  }
#if !N2C_HAS_MAX_CONTINUATIONS
  if (hd->type == NGHTTP2_CONTINUATION &&
      ++s->continuations > N2C_MAX_CONTINUATIONS) {
    s->flooded = 1;
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
#endif
  return 0;
}

static int n2c_on_invalid_frame_recv(nghttp2_session *session,
                                     const nghttp2_frame *frame,
                                     int lib_error_code, void *user_data) {
  n2c_session *s = user_data;
  (void)session;
  (void)lib_error_code;
  /* Malformed requests and trailers (nghttp2 resets the stream). */
  if (frame->hd.type == NGHTTP2_HEADERS && frame->hd.stream_id != 0) {
    return n2c_peer_fault(s, frame->hd.stream_id)
               ? NGHTTP2_ERR_CALLBACK_FAILURE
               : 0;
  }
  return n2c_glitch(s) ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

/* ---- the peer's closed streams (RFC 9113 section 5.1) -------------------- */

/* With SETTINGS_NO_RFC7540_PRIORITIES libnghttp2 forgets a stream once it
 * closes and ignores what comes on it after.  The session keeps, for the
 * peer's latest N2C_SID_WINDOW streams, which ids were used and which closed
 * after the peer's END_STREAM or RST_STREAM; a stream the server reset while
 * the peer was still sending may get frames in flight, which stay ignored. */
#define N2C_SID_BIT(sid) (((uint32_t)(sid) >> 1) % N2C_SID_WINDOW)
#define N2C_BIT_GET(map, k) (((map)[(k) / 64] >> ((k) % 64)) & 1)
#define N2C_BIT_SET(map, k) ((map)[(k) / 64] |= (uint64_t)1 << ((k) % 64))
#define N2C_BIT_CLEAR(map, k) ((map)[(k) / 64] &= ~((uint64_t)1 << ((k) % 64)))

static int n2c_peer_stream(const n2c_session *s, int32_t sid) {
  return s->server && (sid & 1) && sid <= s->peer_max_sid &&
         (uint32_t)(s->peer_max_sid - sid) < 2 * N2C_SID_WINDOW;
}

/* The peer opens `sid`, above any it opened before. */
static void n2c_open_peer_stream(n2c_session *s, int32_t sid) {
  uint32_t n = ((uint32_t)(sid - s->peer_max_sid)) >> 1, k;
  if (n >= N2C_SID_WINDOW) {
    memset(s->sid_used, 0, sizeof(s->sid_used));
    memset(s->sid_closed, 0, sizeof(s->sid_closed));
  } else {
    for (k = 1; k <= n; ++k) {
      uint32_t b = N2C_SID_BIT(s->peer_max_sid + 2 * (int32_t)k);
      N2C_BIT_CLEAR(s->sid_used, b);
      N2C_BIT_CLEAR(s->sid_closed, b);
    }
  }
  N2C_BIT_SET(s->sid_used, N2C_SID_BIT(sid));
  s->peer_max_sid = sid;
}

/* A frame's header, before nghttp2 sees the frame.  Returns nonzero when the
 * session ends here (flooded, or terminated with the error RFC 9113 asks). */
static int n2c_check_frame(n2c_session *s, uint8_t type, uint8_t flags,
                           int32_t sid, size_t length) {
  nghttp2_stream *stream;
  uint32_t b, code;
  if (type == NGHTTP2_DATA && length > 0 && length < N2C_TINY_DATA &&
      !(flags & NGHTTP2_FLAG_END_STREAM) &&
      n2c_glitch_cost(s, (int64_t)(N2C_TINY_DATA - length) >> 3)) {
    return 1;
  }
  if (!s->server || !(sid & 1) ||
      (type != NGHTTP2_HEADERS && type != NGHTTP2_DATA)) {
    return 0;
  }
  if (sid > s->peer_max_sid) {
    if (type == NGHTTP2_HEADERS) {
      n2c_open_peer_stream(s, sid);
    }
    return 0; /* DATA on an idle stream: nghttp2's PROTOCOL_ERROR */
  }
  stream = nghttp2_session_find_stream(s->session, sid);
  if ((stream != NULL &&
       nghttp2_stream_get_state(stream) != NGHTTP2_STREAM_STATE_CLOSED) ||
      !n2c_peer_stream(s, sid)) {
    return 0; /* open (nghttp2's rules), or too old to know */
  }
  b = N2C_SID_BIT(sid);
  if (!N2C_BIT_GET(s->sid_used, b)) {
    /* A lower id never used (section 5.1.1): closed without a word. */
    code = type == NGHTTP2_HEADERS ? NGHTTP2_PROTOCOL_ERROR
                                   : NGHTTP2_STREAM_CLOSED;
  } else if (N2C_BIT_GET(s->sid_closed, b)) {
    code = NGHTTP2_STREAM_CLOSED;
  } else {
    return 0;
  }
  nghttp2_session_terminate_session(s->session, code);
  return 1;
}

static int n2c_on_header(nghttp2_session *session, const nghttp2_frame *frame,
                         const uint8_t *name, size_t namelen,
                         const uint8_t *value, size_t valuelen, uint8_t flags,
                         void *user_data) {
  n2c_session *s = user_data;
  static const uint8_t nul = 0;
  (void)session;
  (void)frame;
  (void)flags;
  /* NUL separates fields on the way to Python; nghttp2 already refuses it
   * in HTTP messaging mode, this guards the mode without it. */
  if (memchr(name, 0, namelen) || memchr(value, 0, valuelen)) {
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  /* RFC 9113 section 6.5.2: the size of a field is its length plus 32.  A
   * block past the announced limit (an HPACK bomb) ends the connection. */
  s->hdr_size += namelen + valuelen + 32;
  if (s->max_header_list && s->hdr_size > s->max_header_list) {
    s->flooded = 1;
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  if (n2c_put_bytes(s, name, namelen) || n2c_put_bytes(s, &nul, 1) ||
      n2c_put_bytes(s, value, valuelen) || n2c_put_bytes(s, &nul, 1)) {
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
#if !N2C_HAS_EXTPRI_GET
  /* nghttp2 cannot tell Python a stream's priority: Python follows the
   * request's signal itself (the value is in pl, just copied). */
  if (namelen == 8 && frame->hd.type == NGHTTP2_HEADERS &&
      frame->headers.cat == NGHTTP2_HCAT_REQUEST &&
      memcmp(name, "priority", 8) == 0) {
    return n2c_event(s, N2C_EV_PRIORITY, frame->hd.stream_id, 0, 0,
                     (int64_t)(s->pl_len - valuelen - 1), (int64_t)valuelen);
  }
#endif
  return 0;
}

/* The header block since on_begin_headers, without its last NUL. */
static int n2c_headers_event(n2c_session *s, int64_t kind, int64_t stream_id,
                             int64_t a, int64_t b) {
  size_t off = s->hdr_off, len = s->pl_len - off;
  s->hdr_open = 0;
  if (len) {
    --len;
  }
  return n2c_event(s, kind, stream_id, a, b, (int64_t)off, (int64_t)len);
}

static int n2c_on_frame_recv(nghttp2_session *session,
                             const nghttp2_frame *frame, void *user_data) {
  n2c_session *s = user_data;
  int32_t sid = frame->hd.stream_id;
  int end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  (void)session;
  switch (frame->hd.type) {
  case NGHTTP2_HEADERS:
    if (s->batch_min_sid == 0 && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      s->batch_min_sid = sid;
    }
    return n2c_headers_event(s, N2C_EV_HEADERS, sid, frame->headers.cat,
                             end_stream);
  case NGHTTP2_DATA:
    s->data_sid = 0;
    if (!end_stream) {
      /* An empty DATA frame that does not end the stream: CVE-2019-9518. */
      if (frame->hd.length == 0 && n2c_glitch(s)) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
      }
      return 0;
    }
    /* Fold END_STREAM into this frame's last chunk when it is still queued. */
    if (s->ev_len >= N2C_EV_WORDS) {
      int64_t *e = s->ev + s->ev_len - N2C_EV_WORDS;
      if (e[0] == N2C_EV_DATA && e[1] == sid) {
        e[2] = 1;
        return 0;
      }
    }
    return n2c_event(s, N2C_EV_DATA, sid, 1, 0, 0, 0);
  case NGHTTP2_PUSH_PROMISE:
    return n2c_headers_event(s, N2C_EV_PUSH_PROMISE, sid,
                             frame->push_promise.promised_stream_id, 0);
  case NGHTTP2_RST_STREAM:
    /* Rapid Reset (CVE-2023-44487).  libnghttp2's own limit, where it has
     * one, is set looser and answers INTERNAL_ERROR; this one answers
     * ENHANCE_YOUR_CALM, as RFC 9113 section 10.5 suggests. */
    if (n2c_glitch(s)) {
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    s->rst_sid = sid; /* nghttp2 closes the stream next */
    return n2c_event(s, N2C_EV_RST_STREAM, sid, frame->rst_stream.error_code,
                     0, 0, 0);
  case NGHTTP2_PRIORITY:
    return n2c_glitch(s) ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
  case NGHTTP2_PRIORITY_UPDATE: {
    /* Delivered only to servers that enabled it (builtin extension type). */
    const nghttp2_ext_priority_update *pu = frame->ext.payload;
    if (n2c_glitch(s)) {
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return n2c_event_pl(s, N2C_EV_PRIORITY, pu->stream_id, 1, 0,
                        pu->field_value, pu->field_value_len);
  }
  case NGHTTP2_SETTINGS: {
    size_t i, off = s->pl_len;
    if (!(frame->hd.flags & NGHTTP2_FLAG_ACK) && n2c_glitch(s)) {
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    for (i = 0; i < frame->settings.niv; ++i) {
      uint8_t b[6];
      uint16_t id = (uint16_t)frame->settings.iv[i].settings_id;
      uint32_t v = frame->settings.iv[i].value;
      b[0] = (uint8_t)(id >> 8);
      b[1] = (uint8_t)id;
      b[2] = (uint8_t)(v >> 24);
      b[3] = (uint8_t)(v >> 16);
      b[4] = (uint8_t)(v >> 8);
      b[5] = (uint8_t)v;
      if (n2c_put_bytes(s, b, 6) != 0) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
      }
    }
    return n2c_event(s, N2C_EV_SETTINGS, 0,
                     (frame->hd.flags & NGHTTP2_FLAG_ACK) != 0, 0,
                     (int64_t)off, (int64_t)(s->pl_len - off));
  }
  case NGHTTP2_PING:
    if (!(frame->hd.flags & NGHTTP2_FLAG_ACK) && n2c_glitch(s)) {
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return n2c_event_pl(s, N2C_EV_PING, 0,
                        (frame->hd.flags & NGHTTP2_FLAG_ACK) != 0, 0,
                        frame->ping.opaque_data, 8);
  case NGHTTP2_GOAWAY:
    return n2c_event_pl(s, N2C_EV_GOAWAY, 0, frame->goaway.last_stream_id,
                        frame->goaway.error_code, frame->goaway.opaque_data,
                        frame->goaway.opaque_data_len);
  case NGHTTP2_WINDOW_UPDATE:
    /* Tiny increments: a WINDOW_UPDATE flood, or a peer dribbling data. */
    if (frame->window_update.window_size_increment < 1024 && n2c_glitch(s)) {
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (s->quiet_window_updates) {
      return 0;
    }
    return n2c_event(s, N2C_EV_WINDOW_UPDATE, sid,
                     frame->window_update.window_size_increment, 0, 0, 0);
  default:
    return 0;
  }
}

static int n2c_on_data_chunk_recv(nghttp2_session *session, uint8_t flags,
                                  int32_t stream_id, const uint8_t *data,
                                  size_t len, void *user_data) {
  n2c_session *s = user_data;
  (void)session;
  (void)flags;
  if (s->in != NULL && data >= s->in && data + len <= s->in + s->in_len) {
    /* Python slices its own input: no copy here. */
    return n2c_event(s, N2C_EV_DATA, stream_id, 0, 1,
                     (int64_t)(data - s->in), (int64_t)len);
  }
  return n2c_event_pl(s, N2C_EV_DATA, stream_id, 0, 0, data, len);
}

static int n2c_on_frame_send(nghttp2_session *session,
                             const nghttp2_frame *frame, void *user_data) {
  (void)session;
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    return n2c_event(user_data, N2C_EV_GOAWAY_SENT, 0,
                     frame->goaway.last_stream_id, frame->goaway.error_code,
                     0, 0);
  }
  return 0;
}

static int n2c_on_stream_close(nghttp2_session *session, int32_t stream_id,
                               uint32_t error_code, void *user_data) {
  n2c_session *s = user_data;
  n2c_stream *st = nghttp2_session_get_stream_user_data(session, stream_id);
  if (st != NULL) {
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    n2c_stream_free(st);
  }
  if (n2c_peer_stream(s, stream_id) &&
      (stream_id == s->rst_sid ||
       nghttp2_session_get_stream_remote_close(session, stream_id) == 1)) {
    N2C_BIT_SET(s->sid_closed, N2C_SID_BIT(stream_id));
  }
  return n2c_event(s, N2C_EV_STREAM_CLOSED, stream_id, error_code, 0, 0, 0);
}

/* ---- sessions ------------------------------------------------------------ */

void n2c_session_del(n2c_session *s);

n2c_session *n2c_session_new(int server, nghttp2_option *option, int *rv) {
  nghttp2_session_callbacks *cbs;
  n2c_session *s = calloc(1, sizeof(n2c_session));
  if (s == NULL) {
    *rv = NGHTTP2_ERR_NOMEM;
    return NULL;
  }
  s->streams.next = s->streams.prev = &s->streams;
  s->server = server;
  s->fr_skip = server ? 24 : 0; /* the client connection preface */
  /* Allocated up front so that Python never sees a NULL buffer. */
  if (n2c_reserve((void **)&s->ev, &s->ev_cap, 16 * N2C_EV_WORDS,
                  sizeof(int64_t)) != 0 ||
      n2c_reserve((void **)&s->pl, &s->pl_cap, 1, 1) != 0 ||
      n2c_reserve((void **)&s->out, &s->out_cap, 1, 1) != 0) {
    *rv = NGHTTP2_ERR_NOMEM;
    n2c_session_del(s);
    return NULL;
  }
  *rv = nghttp2_session_callbacks_new(&cbs);
  if (*rv != 0) {
    n2c_session_del(s);
    return NULL;
  }
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs,
                                                          n2c_on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, n2c_on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, n2c_on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
      cbs, n2c_on_data_chunk_recv);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, n2c_on_frame_send);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs,
                                                         n2c_on_stream_close);
  nghttp2_session_callbacks_set_send_data_callback(cbs, n2c_send_data);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(
      cbs, n2c_on_invalid_frame_recv);
  nghttp2_session_callbacks_set_on_begin_frame_callback(cbs,
                                                        n2c_on_begin_frame);
  if (server) {
    *rv = nghttp2_session_server_new2(&s->session, cbs, s, option);
  } else {
    *rv = nghttp2_session_client_new2(&s->session, cbs, s, option);
  }
  nghttp2_session_callbacks_del(cbs);
  if (*rv != 0) {
    s->session = NULL;
    n2c_session_del(s);
    return NULL;
  }
  return s;
}

void n2c_session_del(n2c_session *s) {
  if (s == NULL) {
    return;
  }
  nghttp2_session_del(s->session);
  while (s->streams.next != &s->streams) {
    n2c_stream_free(s->streams.next);
  }
  free(s->ev);
  free(s->pl);
  free(s->out);
  free(s);
}

nghttp2_session *n2c_session_raw(n2c_session *s) { return s->session; }

#define N2C_WANT_READ 1
#define N2C_WANT_WRITE 2

int n2c_wants(n2c_session *s) {
  return (nghttp2_session_want_read(s->session) ? N2C_WANT_READ : 0) |
         (nghttp2_session_want_write(s->session) ? N2C_WANT_WRITE : 0);
}

#define N2C_R_MOVED 1
#define N2C_R_EVENTS 2

static ssize_t n2c_result(n2c_session *s, size_t count) {
  ssize_t r = (ssize_t)(count << 2);
  if (s->ev_len) {
    r |= N2C_R_EVENTS;
  }
  if (s->moved) {
    r |= N2C_R_MOVED;
    s->moved = 0;
  }
  return r;
}

/* nghttp2_session_mem_recv, one frame at a time: each frame's header is
 * checked before nghttp2 sees the frame (n2c_check_frame), and a DATA frame
 * nghttp2 began but did not receive is known the moment it ends. */
static n2c_ssize n2c_feed_frames(n2c_session *s, const uint8_t *in,
                                 size_t inlen) {
  const uint8_t *p = in, *end = in + inlen;
  n2c_ssize rv;
  if (!nghttp2_session_want_read(s->session)) {
    return (n2c_ssize)inlen; /* ending: nghttp2 would ignore it all */
  }
  while (p < end) {
    size_t n, avail = (size_t)(end - p);
    if (s->fr_skip) {
      n = s->fr_skip < avail ? s->fr_skip : avail;
      s->fr_skip -= n;
    } else if (s->fr_left) {
      n = s->fr_left < avail ? s->fr_left : avail;
      s->fr_left -= n;
    } else {
      const uint8_t *h = s->fr_hd;
      size_t take = 9 - s->fr_hd_len;
      if (take > avail) {
        take = avail;
      }
      memcpy(s->fr_hd + s->fr_hd_len, p, take);
      s->fr_hd_len += take;
      n = take;
      if (s->fr_hd_len == 9) {
        size_t length = ((size_t)h[0] << 16) | ((size_t)h[1] << 8) | h[2];
        int32_t sid = (int32_t)((((uint32_t)h[5] & 0x7f) << 24) |
                                ((uint32_t)h[6] << 16) |
                                ((uint32_t)h[7] << 8) | h[8]);
        s->fr_hd_len = 0;
        if (n2c_check_frame(s, h[3], h[4], sid, length)) {
          return (n2c_ssize)inlen; /* the session ends: ignore the rest */
        }
        s->fr_left = length;
        avail -= take;
        n += length < avail ? length : avail;
        s->fr_left -= n - take;
      }
    }
#if N2C_HAS_SSIZE_API
    rv = nghttp2_session_mem_recv2(s->session, p, n);
#else
    rv = nghttp2_session_mem_recv(s->session, p, n);
#endif
    if (rv < 0) {
      return rv;
    }
    p += n;
    if (s->data_sid && s->fr_left == 0 && s->fr_hd_len == 0) {
      int32_t sid = s->data_sid;
      s->data_sid = 0;
      if (n2c_peer_fault(s, sid)) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
      }
    }
  }
  return (n2c_ssize)inlen;
}

ssize_t n2c_recv(n2c_session *s, const char *in, size_t inlen) {
  n2c_ssize rv;
  s->ev_len = 0;
  if (s->hdr_open) {
    /* Keep the part of a header block that earlier input brought. */
    s->pl_len -= s->hdr_off;
    memmove(s->pl, s->pl + s->hdr_off, s->pl_len);
    s->hdr_off = 0;
  } else {
    s->pl_len = 0;
  }
  s->in = (const uint8_t *)in;
  s->in_len = inlen;
  s->batch_min_sid = 0;
  rv = n2c_feed_frames(s, (const uint8_t *)in, inlen);
  s->in = NULL;
  s->in_len = 0;
  if (s->flooded) {
    nghttp2_session_terminate_session(s->session, NGHTTP2_ENHANCE_YOUR_CALM);
    return NGHTTP2_ERR_FLOODED;
  }
  if (rv < 0) {
    return (ssize_t)rv;
  }
  return n2c_result(s, s->ev_len);
}

int n2c_set_limits(n2c_session *s, size_t max_header_list,
                   uint32_t glitch_burst, uint32_t glitch_rate,
                   int quiet_window_updates) {
  s->max_header_list = max_header_list;
  s->glitch_burst = s->glitch_tokens = (int64_t)glitch_burst * 1000;
  s->glitch_rate = glitch_rate;
  s->glitch_ms = n2c_now_ms();
  s->quiet_window_updates = quiet_window_updates;
  return 0;
}

ssize_t n2c_send(n2c_session *s, size_t limit, int keep) {
  s->ev_len = 0; /* sending queues no payload: pl stays as it is */
  if (!keep) {
    s->out_len = 0;
  }
  s->limit = limit;
  if (limit && s->out_len >= limit) {
    return n2c_result(s, s->out_len);
  }
  for (;;) {
    const uint8_t *p;
#if N2C_HAS_SSIZE_API
    n2c_ssize n = nghttp2_session_mem_send2(s->session, &p);
#else
    n2c_ssize n = nghttp2_session_mem_send(s->session, &p);
#endif
    if (n < 0) {
      return (ssize_t)n;
    }
    if (n == 0) {
      break;
    }
    if (n2c_grow(s, (void **)&s->out, &s->out_cap, s->out_len + (size_t)n,
                 1) != 0) {
      return NGHTTP2_ERR_NOMEM;
    }
    memcpy(s->out + s->out_len, p, (size_t)n);
    s->out_len += (size_t)n;
    if (limit && s->out_len >= limit) {
      break;
    }
  }
  return n2c_result(s, s->out_len);
}

/* A provider for a new body, or NULL for none. */
static int n2c_make_provider(n2c_session *s, N2C_PROVIDER *prd,
                             n2c_stream **stp, int body_kind,
                             const char *body, size_t bodylen, int eof) {
  *stp = NULL;
  if (body_kind == N2C_BODY_NONE) {
    return 0;
  }
  *stp = n2c_stream_new(s, body, bodylen, eof);
  if (*stp == NULL) {
    return NGHTTP2_ERR_NOMEM;
  }
  prd->source.ptr = *stp;
  prd->read_callback = n2c_read;
  return 0;
}

int32_t n2c_submit_request(n2c_session *s, const char *hdrs, size_t hdrslen,
                           size_t nfields, int body_kind, const char *body,
                           size_t bodylen, int eof) {
  N2C_PROVIDER prd;
  n2c_stream *st;
  int32_t rv;
  N2C_NV_BEGIN(hdrs, hdrslen, nfields)
  rv = n2c_make_provider(s, &prd, &st, body_kind, body, bodylen, eof);
  if (rv == 0) {
    rv = N2C_SUBMIT_REQUEST(s->session, NULL, nva, nfields,
                            st ? &prd : NULL, st);
    if (rv < 0 && st) {
      n2c_stream_free(st);
    } else if (st) {
      st->stream_id = rv;
    }
  }
  N2C_NV_END
  return rv;
}

int n2c_submit_response(n2c_session *s, int32_t stream_id, const char *hdrs,
                        size_t hdrslen, size_t nfields, int body_kind,
                        const char *body, size_t bodylen, int eof) {
  N2C_PROVIDER prd;
  n2c_stream *st;
  int rv;
  N2C_NV_BEGIN(hdrs, hdrslen, nfields)
  /* nghttp2 queues a response on a closed or unknown stream and drops it
   * when sending: refuse it now, before a body is attached to it. */
  st = NULL;
  rv = nghttp2_session_get_stream_local_close(s->session, stream_id);
  rv = rv < 0 ? NGHTTP2_ERR_STREAM_CLOSED : rv ? NGHTTP2_ERR_STREAM_SHUT_WR : 0;
  if (rv == 0) {
    rv = n2c_make_provider(s, &prd, &st, body_kind, body, bodylen, eof);
  }
  if (rv == 0 && st &&
      nghttp2_session_get_stream_user_data(s->session, stream_id) != NULL) {
    rv = NGHTTP2_ERR_DATA_EXIST;
  }
  if (rv == 0) {
    rv = N2C_SUBMIT_RESPONSE(s->session, stream_id, nva, nfields,
                             st ? &prd : NULL);
    if (rv == 0 && st) {
      st->stream_id = stream_id;
      rv = nghttp2_session_set_stream_user_data(s->session, stream_id, st);
    }
  }
  if (rv != 0 && st) {
    n2c_stream_free(st);
  }
  N2C_NV_END
  return rv;
}

int n2c_submit_headers(n2c_session *s, int32_t stream_id, int end_stream,
                       const char *hdrs, size_t hdrslen, size_t nfields) {
  int32_t rv;
  N2C_NV_BEGIN(hdrs, hdrslen, nfields)
  rv = nghttp2_submit_headers(s->session,
                              end_stream ? NGHTTP2_FLAG_END_STREAM
                                         : NGHTTP2_FLAG_NONE,
                              stream_id, NULL, nva, nfields, NULL);
  N2C_NV_END
  return rv < 0 ? rv : 0;
}

int32_t n2c_submit_push_promise(n2c_session *s, int32_t stream_id,
                                const char *hdrs, size_t hdrslen,
                                size_t nfields) {
  int32_t rv;
  N2C_NV_BEGIN(hdrs, hdrslen, nfields)
  rv = nghttp2_submit_push_promise(s->session, NGHTTP2_FLAG_NONE, stream_id,
                                   nva, nfields, NULL);
  N2C_NV_END
  return rv;
}

int n2c_provide(n2c_session *s, int32_t stream_id, const char *data,
                size_t len, int eof) {
  n2c_stream *st = n2c_find_stream(s, stream_id);
  int held, rv;
  if (st == NULL) {
    return NGHTTP2_ERR_STREAM_CLOSED;
  }
  held = n2c_stream_push(st, data, data ? len : 0);
  if (held < 0) {
    return held;
  }
  if (eof) {
    st->eof = 1;
  }
  if (st->waiting) {
    st->waiting = 0;
    rv = nghttp2_session_resume_data(s->session, stream_id);
    /* Not deferred after all: nghttp2 will read the piece anyway. */
    if (rv != 0 && rv != NGHTTP2_ERR_INVALID_ARGUMENT) {
      return rv;
    }
  }
  return held;
}

int n2c_set_trailers(n2c_session *s, int32_t stream_id, const char *hdrs,
                     size_t hdrslen, size_t nfields) {
  n2c_stream *st = n2c_find_stream(s, stream_id);
  uint8_t *copy;
  if (st == NULL) {
    return NGHTTP2_ERR_STREAM_CLOSED;
  }
  copy = malloc(hdrslen ? hdrslen : 1);
  if (copy == NULL) {
    return NGHTTP2_ERR_NOMEM;
  }
  memcpy(copy, hdrs, hdrslen);
  free(st->trailers);
  st->trailers = copy;
  st->trailers_len = hdrslen;
  st->ntrailers = nfields;
  return 0;
}

int n2c_has_body(n2c_session *s, int32_t stream_id) {
  return n2c_find_stream(s, stream_id) != NULL;
}

/* ---- options from newer libraries ---------------------------------------- */

int n2c_option_set_stream_reset_rate_limit(nghttp2_option *o, uint64_t burst,
                                           uint64_t rate) {
#if N2C_HAS_STREAM_RESET_RATE_LIMIT
  nghttp2_option_set_stream_reset_rate_limit(o, burst, rate);
  return 0;
#else
  (void)o, (void)burst, (void)rate;
  return NGHTTP2_ERR_INVALID_STATE;
#endif
}

int n2c_option_set_max_continuations(nghttp2_option *o, size_t val) {
#if N2C_HAS_MAX_CONTINUATIONS
  nghttp2_option_set_max_continuations(o, val);
  return 0;
#else
  (void)o, (void)val;
  return NGHTTP2_ERR_INVALID_STATE;
#endif
}

int n2c_option_set_max_settings(nghttp2_option *o, size_t val) {
#if N2C_HAS_MAX_SETTINGS
  nghttp2_option_set_max_settings(o, val);
  return 0;
#else
  (void)o, (void)val;
  return NGHTTP2_ERR_INVALID_STATE;
#endif
}

int n2c_option_set_max_outbound_ack(nghttp2_option *o, size_t val) {
#if N2C_HAS_MAX_OUTBOUND_ACK
  nghttp2_option_set_max_outbound_ack(o, val);
  return 0;
#else
  (void)o, (void)val;
  return NGHTTP2_ERR_INVALID_STATE;
#endif
}

int n2c_option_set_no_rfc9113_leading_and_trailing_ws_validation(
    nghttp2_option *o, int val) {
#if N2C_HAS_NO_RFC9113_WS_VALIDATION
  nghttp2_option_set_no_rfc9113_leading_and_trailing_ws_validation(o, val);
  return 0;
#else
  (void)o, (void)val;
  return NGHTTP2_ERR_INVALID_STATE;
#endif
}

int n2c_option_set_server_fallback_rfc7540_priorities(nghttp2_option *o,
                                                      int val) {
#if N2C_HAS_SERVER_FALLBACK_RFC7540_PRIORITIES
  nghttp2_option_set_server_fallback_rfc7540_priorities(o, val);
  return 0;
#else
  (void)o, (void)val;
  return NGHTTP2_ERR_INVALID_STATE;
#endif
}

/* ---- RFC 9218 calls from newer libraries --------------------------------- */

int n2c_session_get_extpri_stream_priority(nghttp2_session *session,
                                           nghttp2_extpri *extpri,
                                           int32_t stream_id) {
#if N2C_HAS_EXTPRI_GET
  return nghttp2_session_get_extpri_stream_priority(session, extpri,
                                                    stream_id);
#else
  (void)session, (void)extpri, (void)stream_id;
  return NGHTTP2_ERR_INVALID_STATE;
#endif
}

int n2c_extpri_parse_priority(nghttp2_extpri *extpri, const uint8_t *value,
                              size_t len) {
#if N2C_HAS_EXTPRI_PARSE
  return nghttp2_extpri_parse_priority(extpri, value, len);
#else
  (void)extpri, (void)value, (void)len;
  return NGHTTP2_ERR_INVALID_STATE;
#endif
}

/* ---- HPACK --------------------------------------------------------------- */

/* Point nva (nfields long; on the stack when small, else malloc'd) at the
 * fields of a length-prefixed block: lengths are given, so names and values
 * may hold any byte, NUL included (RFC 7541 carries octets).  NULL when
 * memory ran out. */
static nghttp2_nv *n2c_lens_nv(nghttp2_nv *stack, const char *fields,
                               const size_t *lens, size_t nfields) {
  nghttp2_nv *nva = stack;
  const uint8_t *p = (const uint8_t *)fields;
  size_t i;
  if (nfields > N2C_STACK_NV) {
    nva = malloc(sizeof(nghttp2_nv) * nfields);
    if (nva == NULL) {
      return NULL;
    }
  }
  for (i = 0; i < nfields; ++i) {
    nva[i].name = (uint8_t *)p;
    nva[i].namelen = lens[2 * i];
    p += lens[2 * i];
    nva[i].value = (uint8_t *)p;
    nva[i].valuelen = lens[2 * i + 1];
    p += lens[2 * i + 1];
    nva[i].flags = NGHTTP2_NV_FLAG_NONE;
  }
  return nva;
}

size_t n2c_hd_deflate_bound(nghttp2_hd_deflater *d, const char *fields,
                            const size_t *lens, size_t nfields) {
  size_t bound;
  nghttp2_nv nva_stack[N2C_STACK_NV];
  nghttp2_nv *nva = n2c_lens_nv(nva_stack, fields, lens, nfields);
  if (nva == NULL) {
    return 0;
  }
  bound = nghttp2_hd_deflate_bound(d, nva, nfields);
  if (nva != nva_stack) {
    free(nva);
  }
  return bound;
}

ssize_t n2c_hd_deflate(nghttp2_hd_deflater *d, uint8_t *out, size_t outlen,
                       const char *fields, const size_t *lens,
                       size_t nfields) {
  ssize_t rv;
  nghttp2_nv nva_stack[N2C_STACK_NV];
  nghttp2_nv *nva = n2c_lens_nv(nva_stack, fields, lens, nfields);
  if (nva == NULL) {
    return NGHTTP2_ERR_NOMEM;
  }
#if N2C_HAS_SSIZE_API
  rv = (ssize_t)nghttp2_hd_deflate_hd2(d, out, outlen, nva, nfields);
#else
  rv = nghttp2_hd_deflate_hd(d, out, outlen, nva, nfields);
#endif
  if (nva != nva_stack) {
    free(nva);
  }
  return rv;
}

n2c_inflater *n2c_inflater_new(void) {
  n2c_inflater *inf = calloc(1, sizeof(n2c_inflater));
  if (inf == NULL) {
    return NULL;
  }
  if (nghttp2_hd_inflate_new(&inf->inflater) != 0) {
    free(inf);
    return NULL;
  }
  return inf;
}

void n2c_inflater_del(n2c_inflater *inf) {
  if (inf == NULL) {
    return;
  }
  nghttp2_hd_inflate_del(inf->inflater);
  free(inf->lens);
  free(inf->pl);
  free(inf);
}

nghttp2_hd_inflater *n2c_inflater_raw(n2c_inflater *inf) {
  return inf->inflater;
}

ssize_t n2c_inflate(n2c_inflater *inf, const char *in, size_t inlen,
                    size_t max_size) {
  const uint8_t *p = (const uint8_t *)in;
  size_t nfields = 0, size = 0;
  inf->nlens = 0;
  inf->pl_len = 0;
  for (;;) {
    nghttp2_nv nv;
    int flags = 0;
#if N2C_HAS_SSIZE_API
    n2c_ssize rv = nghttp2_hd_inflate_hd3(inf->inflater, &nv, &flags, p,
                                          inlen, 1);
#else
    n2c_ssize rv = nghttp2_hd_inflate_hd2(inf->inflater, &nv, &flags, p,
                                          inlen, 1);
#endif
    if (rv < 0) {
      return (ssize_t)rv;
    }
    p += rv;
    inlen -= (size_t)rv;
    if (flags & NGHTTP2_HD_INFLATE_EMIT) {
      size_t need = inf->pl_len + nv.namelen + nv.valuelen;
      /* RFC 9113 section 6.5.2 sizes: an HPACK bomb stops here. */
      size += nv.namelen + nv.valuelen + 32;
      if (max_size && size > max_size) {
        return NGHTTP2_ERR_FLOODED;
      }
      if (n2c_reserve((void **)&inf->lens, &inf->lens_cap, inf->nlens + 2,
                      sizeof(int64_t)) != 0 ||
          n2c_reserve((void **)&inf->pl, &inf->pl_cap, need, 1) != 0) {
        return NGHTTP2_ERR_NOMEM;
      }
      memcpy(inf->pl + inf->pl_len, nv.name, nv.namelen);
      memcpy(inf->pl + inf->pl_len + nv.namelen, nv.value, nv.valuelen);
      inf->pl_len = need;
      inf->lens[inf->nlens++] = (int64_t)nv.namelen;
      inf->lens[inf->nlens++] = (int64_t)nv.valuelen;
      ++nfields;
    }
    if (flags & NGHTTP2_HD_INFLATE_FINAL) {
      nghttp2_hd_inflate_end_headers(inf->inflater);
      return (ssize_t)nfields;
    }
    if ((flags & NGHTTP2_HD_INFLATE_EMIT) == 0 && inlen == 0) {
      /* A block that ends mid-field. */
      return NGHTTP2_ERR_HEADER_COMP;
    }
  }
}
