/* The C glue of nghttp2_cffi (glue.c), as Python sees it.
 *
 * A session's callbacks all run in C: they append fixed-size event records
 * and the bytes they refer to (header blocks, copied DATA, settings, ping and
 * goaway payloads) to two buffers that Python takes once per call.  Response
 * and request bodies are served to nghttp2 from memory that Python keeps alive,
 * so no DATA frame calls back into Python.
 */

/* Features of the linked libnghttp2 that not every supported version has. */
static const int N2C_HAS_SSIZE_API;              /* nghttp2_ssize functions (1.61) */
static const int N2C_HAS_STREAM_RESET_RATE_LIMIT;
static const int N2C_HAS_MAX_CONTINUATIONS;
static const int N2C_HAS_MAX_SETTINGS;
static const int N2C_HAS_MAX_OUTBOUND_ACK;
static const int N2C_HAS_NO_RFC9113_WS_VALIDATION;
static const int N2C_HAS_SERVER_FALLBACK_RFC7540_PRIORITIES;
static const int N2C_HAS_EXTPRI_GET;            /* nghttp2_session_get_extpri_stream_priority */
static const int N2C_HAS_EXTPRI_PARSE;          /* nghttp2_extpri_parse_priority */

/* One event record is N2C_EV_WORDS int64 words:
 * kind, stream_id, a, b, c, d  (meaning of a..d per kind, see glue.c). */
#define N2C_EV_WORDS 6
#define N2C_EV_HEADERS ...
#define N2C_EV_DATA ...
#define N2C_EV_RST_STREAM ...
#define N2C_EV_STREAM_CLOSED ...
#define N2C_EV_SETTINGS ...
#define N2C_EV_PING ...
#define N2C_EV_GOAWAY ...
#define N2C_EV_PUSH_PROMISE ...
#define N2C_EV_WINDOW_UPDATE ...
#define N2C_EV_WANT_DATA ...
#define N2C_EV_GOAWAY_SENT ...
#define N2C_EV_PRIORITY ...
#define N2C_EV_NONE ...

/* In-memory bodies: a stream whose DATA nghttp2 reads from these. */
#define N2C_BODY_NONE ...
#define N2C_BODY_PROVIDER ...

typedef struct {
    int64_t *ev;          /* event words */
    size_t ev_len, ev_cap;
    char *pl;             /* bytes the events point into */
    size_t pl_len, pl_cap;
    char *out;            /* bytes to send */
    size_t out_len, out_cap;
    size_t hdr_size;      /* RFC 9113 size of the header block being received */
    ...;
} n2c_session;

n2c_session *n2c_session_new(int server, nghttp2_option *option, int *rv);
void n2c_session_del(n2c_session *s);
nghttp2_session *n2c_session_raw(n2c_session *s);
/* nghttp2_session_want_read and _want_write in one call, as N2C_WANT_* bits
 * (neither: the session is over). */
#define N2C_WANT_READ ...
#define N2C_WANT_WRITE ...
int n2c_wants(n2c_session *s);

/* n2c_recv and n2c_send first drop the events and payload of the previous
 * call (Python takes them right after each call), so s->ev and s->out hold
 * only what this call produced (s->pl may also hold the start of a header
 * block that is still being received).  The buffers are never NULL; they
 * only move (realloc) when they grow.
 *
 * On success both return (count << 2) | flags, where
 *   N2C_R_EVENTS: s->ev holds events (s->ev_len words)
 *   N2C_R_MOVED:  a buffer moved since the last return: views are stale
 * and count is, for n2c_recv, the number of event words, for n2c_send, the
 * number of bytes in s->out.  Errors are negative nghttp2 codes; the events
 * queued before the error stay in s->ev and s->pl. */
#define N2C_R_MOVED ...
#define N2C_R_EVENTS ...

/* Feed received bytes (all of them are read). */
ssize_t n2c_recv(n2c_session *s, const char *in, size_t inlen);
/* Serialize pending frames into s->out; stops once at least `limit` bytes are
 * there (0: no limit).  keep: append to what the previous n2c_send left in
 * s->out (also after an error) instead of starting afresh; the count is then
 * the total. */
ssize_t n2c_send(n2c_session *s, size_t limit, int keep);

/* Defences: a header list over max_header_list bytes (RFC 9113 sizes, 0:
 * no limit), or an empty bucket of glitch_burst tokens refilled at
 * glitch_rate per second (0: no bucket) for frames that cost work and carry
 * none, end the session with ENHANCE_YOUR_CALM (n2c_recv returns
 * NGHTTP2_ERR_FLOODED).  quiet_window_updates: no WINDOW_UPDATE events. */
int n2c_set_limits(n2c_session *s, size_t max_header_list,
                   uint32_t glitch_burst, uint32_t glitch_rate,
                   int quiet_window_updates);

/* Header blocks are passed as name\0value\0name\0value with nfields pairs. */
int32_t n2c_submit_request(n2c_session *s, const char *hdrs, size_t hdrslen,
                           size_t nfields, int body_kind, const char *body,
                           size_t bodylen, int eof);
int n2c_submit_response(n2c_session *s, int32_t stream_id, const char *hdrs,
                        size_t hdrslen, size_t nfields, int body_kind,
                        const char *body, size_t bodylen, int eof);
int n2c_submit_headers(n2c_session *s, int32_t stream_id, int end_stream,
                       const char *hdrs, size_t hdrslen, size_t nfields);
int32_t n2c_submit_push_promise(n2c_session *s, int32_t stream_id,
                                const char *hdrs, size_t hdrslen,
                                size_t nfields);
/* Add a piece to a stream's body (data NULL or len 0: none); eof: no piece
 * follows.  The stream holds the pieces given since it last asked for more
 * (N2C_EV_WANT_DATA) and sends them in order; returns how many of them it
 * still holds, newest last (the caller keeps those alive, and may let the
 * others go), or a negative error. */
int n2c_provide(n2c_session *s, int32_t stream_id, const char *data,
                size_t len, int eof);
/* Send these trailers once the body is done instead of END_STREAM on DATA. */
int n2c_set_trailers(n2c_session *s, int32_t stream_id, const char *hdrs,
                     size_t hdrslen, size_t nfields);
int n2c_has_body(n2c_session *s, int32_t stream_id);

/* Options nghttp2 gained after 1.52: return NGHTTP2_ERR_INVALID_STATE when the
 * linked library lacks them (see N2C_HAS_*). */
int n2c_option_set_stream_reset_rate_limit(nghttp2_option *o, uint64_t burst, uint64_t rate);
int n2c_option_set_max_continuations(nghttp2_option *o, size_t val);
int n2c_option_set_max_settings(nghttp2_option *o, size_t val);
int n2c_option_set_max_outbound_ack(nghttp2_option *o, size_t val);
int n2c_option_set_no_rfc9113_leading_and_trailing_ws_validation(nghttp2_option *o, int val);
int n2c_option_set_server_fallback_rfc7540_priorities(nghttp2_option *o, int val);

/* RFC 9218 calls newer than 1.52: NGHTTP2_ERR_INVALID_STATE without them
 * (see N2C_HAS_EXTPRI_*).  Python then follows the client's signals itself,
 * from the N2C_EV_PRIORITY events of `priority` request header fields. */
int n2c_session_get_extpri_stream_priority(nghttp2_session *session,
                                           nghttp2_extpri *extpri,
                                           int32_t stream_id);
int n2c_extpri_parse_priority(nghttp2_extpri *extpri, const uint8_t *value,
                              size_t len);

/* HPACK deflate: names and values back to back in `fields`, their lengths
 * in `lens` (namelen, valuelen per field), so any byte, NUL included, passes.
 * The bound is 0 when memory ran out. */
size_t n2c_hd_deflate_bound(nghttp2_hd_deflater *d, const char *fields,
                            const size_t *lens, size_t nfields);
ssize_t n2c_hd_deflate(nghttp2_hd_deflater *d, uint8_t *out, size_t outlen,
                       const char *fields, const size_t *lens, size_t nfields);

typedef struct {
    int64_t *lens;       /* namelen, valuelen per field */
    size_t nlens;
    char *pl;            /* names and values, back to back */
    size_t pl_len;
    ...;
} n2c_inflater;
n2c_inflater *n2c_inflater_new(void);
void n2c_inflater_del(n2c_inflater *inf);
nghttp2_hd_inflater *n2c_inflater_raw(n2c_inflater *inf);
/* Inflate one whole header block; returns the number of fields or error:
 * NGHTTP2_ERR_FLOODED once the fields pass max_size bytes (RFC 9113 sizes;
 * 0: no bound). */
ssize_t n2c_inflate(n2c_inflater *inf, const char *in, size_t inlen,
                    size_t max_size);
