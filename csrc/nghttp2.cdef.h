/* The part of nghttp2.h that Python can reach as nghttp2_cffi.lib.
 *
 * Read by cffi's cdef, not by a C compiler: `...` lets the compiler take the
 * values and the layouts from the real nghttp2.h, so nothing here is copied
 * by hand.  Only API present in libnghttp2 1.52 and later is declared; newer
 * functions are reached through the n2c_* wrappers in glue.cdef.h.
 * Grouped in nghttp2.h's order.
 */

/* ---- versions and errors ---------------------------------------------- */
#define NGHTTP2_VERSION_NUM ...
static char *const NGHTTP2_PROTO_VERSION_ID;
static char *const NGHTTP2_CLEARTEXT_PROTO_VERSION_ID;
static char *const NGHTTP2_CLIENT_MAGIC;
#define NGHTTP2_CLIENT_MAGIC_LEN ...
#define NGHTTP2_DEFAULT_WEIGHT ...
#define NGHTTP2_INITIAL_WINDOW_SIZE ...
#define NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE ...
#define NGHTTP2_DEFAULT_HEADER_TABLE_SIZE ...
#define NGHTTP2_MAX_WINDOW_SIZE ...

typedef struct {
    int age;
    int version_num;
    const char *version_str;
    const char *proto_str;
    ...;
} nghttp2_info;

nghttp2_info *nghttp2_version(int least_version);
const char *nghttp2_strerror(int lib_error_code);
const char *nghttp2_http2_strerror(uint32_t error_code);
int nghttp2_is_fatal(int lib_error_code);

typedef enum {
    NGHTTP2_ERR_INVALID_ARGUMENT,
    NGHTTP2_ERR_BUFFER_ERROR,
    NGHTTP2_ERR_UNSUPPORTED_VERSION,
    NGHTTP2_ERR_WOULDBLOCK,
    NGHTTP2_ERR_PROTO,
    NGHTTP2_ERR_INVALID_FRAME,
    NGHTTP2_ERR_EOF,
    NGHTTP2_ERR_DEFERRED,
    NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE,
    NGHTTP2_ERR_STREAM_CLOSED,
    NGHTTP2_ERR_STREAM_CLOSING,
    NGHTTP2_ERR_STREAM_SHUT_WR,
    NGHTTP2_ERR_INVALID_STREAM_ID,
    NGHTTP2_ERR_INVALID_STREAM_STATE,
    NGHTTP2_ERR_DEFERRED_DATA_EXIST,
    NGHTTP2_ERR_START_STREAM_NOT_ALLOWED,
    NGHTTP2_ERR_GOAWAY_ALREADY_SENT,
    NGHTTP2_ERR_INVALID_HEADER_BLOCK,
    NGHTTP2_ERR_INVALID_STATE,
    NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE,
    NGHTTP2_ERR_FRAME_SIZE_ERROR,
    NGHTTP2_ERR_HEADER_COMP,
    NGHTTP2_ERR_FLOW_CONTROL,
    NGHTTP2_ERR_INSUFF_BUFSIZE,
    NGHTTP2_ERR_PAUSE,
    NGHTTP2_ERR_TOO_MANY_INFLIGHT_SETTINGS,
    NGHTTP2_ERR_PUSH_DISABLED,
    NGHTTP2_ERR_DATA_EXIST,
    NGHTTP2_ERR_SESSION_CLOSING,
    NGHTTP2_ERR_HTTP_HEADER,
    NGHTTP2_ERR_HTTP_MESSAGING,
    NGHTTP2_ERR_REFUSED_STREAM,
    NGHTTP2_ERR_INTERNAL,
    NGHTTP2_ERR_CANCEL,
    NGHTTP2_ERR_SETTINGS_EXPECTED,
    NGHTTP2_ERR_TOO_MANY_SETTINGS,
    NGHTTP2_ERR_FATAL,
    NGHTTP2_ERR_NOMEM,
    NGHTTP2_ERR_CALLBACK_FAILURE,
    NGHTTP2_ERR_BAD_CLIENT_MAGIC,
    NGHTTP2_ERR_FLOODED,
    ...
} nghttp2_error;

/* ---- header fields ----------------------------------------------------- */
typedef enum {
    NGHTTP2_NV_FLAG_NONE,
    NGHTTP2_NV_FLAG_NO_INDEX,
    NGHTTP2_NV_FLAG_NO_COPY_NAME,
    NGHTTP2_NV_FLAG_NO_COPY_VALUE,
    ...
} nghttp2_nv_flag;

typedef struct {
    uint8_t *name;
    uint8_t *value;
    size_t namelen;
    size_t valuelen;
    uint8_t flags;
} nghttp2_nv;

/* ---- frames ------------------------------------------------------------ */
typedef enum {
    NGHTTP2_DATA, NGHTTP2_HEADERS, NGHTTP2_PRIORITY, NGHTTP2_RST_STREAM,
    NGHTTP2_SETTINGS, NGHTTP2_PUSH_PROMISE, NGHTTP2_PING, NGHTTP2_GOAWAY,
    NGHTTP2_WINDOW_UPDATE, NGHTTP2_CONTINUATION, NGHTTP2_ALTSVC,
    NGHTTP2_ORIGIN, NGHTTP2_PRIORITY_UPDATE, ...
} nghttp2_frame_type;

typedef enum {
    NGHTTP2_FLAG_NONE, NGHTTP2_FLAG_END_STREAM, NGHTTP2_FLAG_END_HEADERS,
    NGHTTP2_FLAG_ACK, NGHTTP2_FLAG_PADDED, NGHTTP2_FLAG_PRIORITY, ...
} nghttp2_flag;

typedef enum {
    NGHTTP2_SETTINGS_HEADER_TABLE_SIZE,
    NGHTTP2_SETTINGS_ENABLE_PUSH,
    NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
    NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
    NGHTTP2_SETTINGS_MAX_FRAME_SIZE,
    NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
    NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL,
    NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES,
    ...
} nghttp2_settings_id;

typedef enum {
    NGHTTP2_NO_ERROR, NGHTTP2_PROTOCOL_ERROR, NGHTTP2_INTERNAL_ERROR,
    NGHTTP2_FLOW_CONTROL_ERROR, NGHTTP2_SETTINGS_TIMEOUT,
    NGHTTP2_STREAM_CLOSED, NGHTTP2_FRAME_SIZE_ERROR, NGHTTP2_REFUSED_STREAM,
    NGHTTP2_CANCEL, NGHTTP2_COMPRESSION_ERROR, NGHTTP2_CONNECT_ERROR,
    NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_INADEQUATE_SECURITY,
    NGHTTP2_HTTP_1_1_REQUIRED, ...
} nghttp2_error_code;

typedef struct {
    size_t length;
    int32_t stream_id;
    uint8_t type;
    uint8_t flags;
    uint8_t reserved;
} nghttp2_frame_hd;

typedef union {
    int fd;
    void *ptr;
} nghttp2_data_source;

typedef enum {
    NGHTTP2_DATA_FLAG_NONE, NGHTTP2_DATA_FLAG_EOF,
    NGHTTP2_DATA_FLAG_NO_END_STREAM, NGHTTP2_DATA_FLAG_NO_COPY, ...
} nghttp2_data_flag;

typedef struct nghttp2_session nghttp2_session;

typedef ssize_t (*nghttp2_data_source_read_callback)(
    nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
    uint32_t *data_flags, nghttp2_data_source *source, void *user_data);

typedef struct {
    nghttp2_data_source source;
    nghttp2_data_source_read_callback read_callback;
} nghttp2_data_provider;

typedef struct { nghttp2_frame_hd hd; size_t padlen; } nghttp2_data;

typedef enum {
    NGHTTP2_HCAT_REQUEST, NGHTTP2_HCAT_RESPONSE, NGHTTP2_HCAT_PUSH_RESPONSE,
    NGHTTP2_HCAT_HEADERS
} nghttp2_headers_category;

typedef struct {
    int32_t stream_id;
    int32_t weight;
    uint8_t exclusive;
} nghttp2_priority_spec;

typedef struct {
    nghttp2_frame_hd hd;
    size_t padlen;
    nghttp2_priority_spec pri_spec;
    nghttp2_nv *nva;
    size_t nvlen;
    nghttp2_headers_category cat;
} nghttp2_headers;

typedef struct { nghttp2_frame_hd hd; nghttp2_priority_spec pri_spec; } nghttp2_priority;
typedef struct { nghttp2_frame_hd hd; uint32_t error_code; } nghttp2_rst_stream;

typedef struct {
    int32_t settings_id;
    uint32_t value;
} nghttp2_settings_entry;

typedef struct {
    nghttp2_frame_hd hd;
    size_t niv;
    nghttp2_settings_entry *iv;
} nghttp2_settings;

typedef struct {
    nghttp2_frame_hd hd;
    size_t padlen;
    nghttp2_nv *nva;
    size_t nvlen;
    int32_t promised_stream_id;
    ...;
} nghttp2_push_promise;

typedef struct { nghttp2_frame_hd hd; uint8_t opaque_data[8]; } nghttp2_ping;

typedef struct {
    nghttp2_frame_hd hd;
    int32_t last_stream_id;
    uint32_t error_code;
    uint8_t *opaque_data;
    size_t opaque_data_len;
    ...;
} nghttp2_goaway;

typedef struct {
    nghttp2_frame_hd hd;
    int32_t window_size_increment;
    ...;
} nghttp2_window_update;

typedef struct { nghttp2_frame_hd hd; void *payload; } nghttp2_extension;

typedef union {
    nghttp2_frame_hd hd;
    nghttp2_data data;
    nghttp2_headers headers;
    nghttp2_priority priority;
    nghttp2_rst_stream rst_stream;
    nghttp2_settings settings;
    nghttp2_push_promise push_promise;
    nghttp2_ping ping;
    nghttp2_goaway goaway;
    nghttp2_window_update window_update;
    nghttp2_extension ext;
} nghttp2_frame;

/* ---- callbacks --------------------------------------------------------- */
typedef ssize_t (*nghttp2_send_callback)(nghttp2_session *session,
    const uint8_t *data, size_t length, int flags, void *user_data);
typedef ssize_t (*nghttp2_recv_callback)(nghttp2_session *session,
    uint8_t *buf, size_t length, int flags, void *user_data);
typedef int (*nghttp2_on_frame_recv_callback)(nghttp2_session *session,
    const nghttp2_frame *frame, void *user_data);
typedef int (*nghttp2_on_invalid_frame_recv_callback)(nghttp2_session *session,
    const nghttp2_frame *frame, int lib_error_code, void *user_data);
typedef int (*nghttp2_on_data_chunk_recv_callback)(nghttp2_session *session,
    uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len,
    void *user_data);
typedef int (*nghttp2_before_frame_send_callback)(nghttp2_session *session,
    const nghttp2_frame *frame, void *user_data);
typedef int (*nghttp2_on_frame_send_callback)(nghttp2_session *session,
    const nghttp2_frame *frame, void *user_data);
typedef int (*nghttp2_on_frame_not_send_callback)(nghttp2_session *session,
    const nghttp2_frame *frame, int lib_error_code, void *user_data);
typedef int (*nghttp2_on_stream_close_callback)(nghttp2_session *session,
    int32_t stream_id, uint32_t error_code, void *user_data);
typedef int (*nghttp2_on_begin_headers_callback)(nghttp2_session *session,
    const nghttp2_frame *frame, void *user_data);
typedef int (*nghttp2_on_header_callback)(nghttp2_session *session,
    const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
    const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data);
typedef int (*nghttp2_error_callback2)(nghttp2_session *session,
    int lib_error_code, const char *msg, size_t len, void *user_data);

typedef struct nghttp2_session_callbacks nghttp2_session_callbacks;
int nghttp2_session_callbacks_new(nghttp2_session_callbacks **callbacks_ptr);
void nghttp2_session_callbacks_del(nghttp2_session_callbacks *callbacks);
void nghttp2_session_callbacks_set_send_callback(
    nghttp2_session_callbacks *cbs, nghttp2_send_callback send_callback);
void nghttp2_session_callbacks_set_recv_callback(
    nghttp2_session_callbacks *cbs, nghttp2_recv_callback recv_callback);
void nghttp2_session_callbacks_set_on_frame_recv_callback(
    nghttp2_session_callbacks *cbs, nghttp2_on_frame_recv_callback cb);
void nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(
    nghttp2_session_callbacks *cbs, nghttp2_on_invalid_frame_recv_callback cb);
void nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
    nghttp2_session_callbacks *cbs, nghttp2_on_data_chunk_recv_callback cb);
void nghttp2_session_callbacks_set_before_frame_send_callback(
    nghttp2_session_callbacks *cbs, nghttp2_before_frame_send_callback cb);
void nghttp2_session_callbacks_set_on_frame_send_callback(
    nghttp2_session_callbacks *cbs, nghttp2_on_frame_send_callback cb);
void nghttp2_session_callbacks_set_on_frame_not_send_callback(
    nghttp2_session_callbacks *cbs, nghttp2_on_frame_not_send_callback cb);
void nghttp2_session_callbacks_set_on_stream_close_callback(
    nghttp2_session_callbacks *cbs, nghttp2_on_stream_close_callback cb);
void nghttp2_session_callbacks_set_on_begin_headers_callback(
    nghttp2_session_callbacks *cbs, nghttp2_on_begin_headers_callback cb);
void nghttp2_session_callbacks_set_on_header_callback(
    nghttp2_session_callbacks *cbs, nghttp2_on_header_callback cb);
void nghttp2_session_callbacks_set_error_callback2(
    nghttp2_session_callbacks *cbs, nghttp2_error_callback2 cb);

/* ---- options ------------------------------------------------------------ */
typedef struct nghttp2_option nghttp2_option;
int nghttp2_option_new(nghttp2_option **option_ptr);
void nghttp2_option_del(nghttp2_option *option);
void nghttp2_option_set_no_auto_window_update(nghttp2_option *option, int val);
void nghttp2_option_set_peer_max_concurrent_streams(nghttp2_option *option, uint32_t val);
void nghttp2_option_set_no_recv_client_magic(nghttp2_option *option, int val);
void nghttp2_option_set_no_http_messaging(nghttp2_option *option, int val);
void nghttp2_option_set_max_reserved_remote_streams(nghttp2_option *option, uint32_t val);
void nghttp2_option_set_no_auto_ping_ack(nghttp2_option *option, int val);
void nghttp2_option_set_max_send_header_block_length(nghttp2_option *option, size_t val);
void nghttp2_option_set_max_deflate_dynamic_table_size(nghttp2_option *option, size_t val);
void nghttp2_option_set_no_closed_streams(nghttp2_option *option, int val);
void nghttp2_option_set_builtin_recv_extension_type(nghttp2_option *option, uint8_t type);

/* ---- sessions ------------------------------------------------------------ */
int nghttp2_session_client_new2(nghttp2_session **session_ptr,
    const nghttp2_session_callbacks *callbacks, void *user_data,
    const nghttp2_option *option);
int nghttp2_session_server_new2(nghttp2_session **session_ptr,
    const nghttp2_session_callbacks *callbacks, void *user_data,
    const nghttp2_option *option);
void nghttp2_session_del(nghttp2_session *session);
int nghttp2_session_send(nghttp2_session *session);
ssize_t nghttp2_session_mem_send(nghttp2_session *session, const uint8_t **data_ptr);
int nghttp2_session_recv(nghttp2_session *session);
ssize_t nghttp2_session_mem_recv(nghttp2_session *session, const uint8_t *in, size_t inlen);
int nghttp2_session_resume_data(nghttp2_session *session, int32_t stream_id);
int nghttp2_session_want_read(nghttp2_session *session);
int nghttp2_session_want_write(nghttp2_session *session);
void *nghttp2_session_get_stream_user_data(nghttp2_session *session, int32_t stream_id);
int nghttp2_session_set_stream_user_data(nghttp2_session *session, int32_t stream_id, void *stream_user_data);
size_t nghttp2_session_get_outbound_queue_size(nghttp2_session *session);
int32_t nghttp2_session_get_stream_effective_recv_data_length(nghttp2_session *session, int32_t stream_id);
int32_t nghttp2_session_get_stream_effective_local_window_size(nghttp2_session *session, int32_t stream_id);
int32_t nghttp2_session_get_stream_local_window_size(nghttp2_session *session, int32_t stream_id);
int32_t nghttp2_session_get_effective_recv_data_length(nghttp2_session *session);
int32_t nghttp2_session_get_effective_local_window_size(nghttp2_session *session);
int32_t nghttp2_session_get_local_window_size(nghttp2_session *session);
int32_t nghttp2_session_get_stream_remote_window_size(nghttp2_session *session, int32_t stream_id);
int32_t nghttp2_session_get_remote_window_size(nghttp2_session *session);
int nghttp2_session_get_stream_local_close(nghttp2_session *session, int32_t stream_id);
int nghttp2_session_get_stream_remote_close(nghttp2_session *session, int32_t stream_id);
int nghttp2_session_terminate_session(nghttp2_session *session, uint32_t error_code);
int nghttp2_session_terminate_session2(nghttp2_session *session, int32_t last_stream_id, uint32_t error_code);
int nghttp2_submit_shutdown_notice(nghttp2_session *session);
uint32_t nghttp2_session_get_remote_settings(nghttp2_session *session, nghttp2_settings_id id);
uint32_t nghttp2_session_get_local_settings(nghttp2_session *session, nghttp2_settings_id id);
int nghttp2_session_set_next_stream_id(nghttp2_session *session, int32_t next_stream_id);
uint32_t nghttp2_session_get_next_stream_id(nghttp2_session *session);
int nghttp2_session_consume(nghttp2_session *session, int32_t stream_id, size_t size);
int nghttp2_session_consume_connection(nghttp2_session *session, size_t size);
int nghttp2_session_consume_stream(nghttp2_session *session, int32_t stream_id, size_t size);
int nghttp2_session_upgrade2(nghttp2_session *session, const uint8_t *settings_payload,
    size_t settings_payloadlen, int head_request, void *stream_user_data);
ssize_t nghttp2_pack_settings_payload(uint8_t *buf, size_t buflen,
    const nghttp2_settings_entry *iv, size_t niv);
int32_t nghttp2_session_get_last_proc_stream_id(nghttp2_session *session);
int nghttp2_session_check_server_session(nghttp2_session *session);

/* ---- submitting frames ------------------------------------------------- */
int32_t nghttp2_submit_request(nghttp2_session *session,
    const nghttp2_priority_spec *pri_spec, const nghttp2_nv *nva, size_t nvlen,
    const nghttp2_data_provider *data_prd, void *stream_user_data);
int nghttp2_submit_response(nghttp2_session *session, int32_t stream_id,
    const nghttp2_nv *nva, size_t nvlen, const nghttp2_data_provider *data_prd);
int nghttp2_submit_trailer(nghttp2_session *session, int32_t stream_id,
    const nghttp2_nv *nva, size_t nvlen);
int32_t nghttp2_submit_headers(nghttp2_session *session, uint8_t flags,
    int32_t stream_id, const nghttp2_priority_spec *pri_spec,
    const nghttp2_nv *nva, size_t nvlen, void *stream_user_data);
int nghttp2_submit_data(nghttp2_session *session, uint8_t flags,
    int32_t stream_id, const nghttp2_data_provider *data_prd);
int nghttp2_submit_rst_stream(nghttp2_session *session, uint8_t flags,
    int32_t stream_id, uint32_t error_code);
int nghttp2_submit_settings(nghttp2_session *session, uint8_t flags,
    const nghttp2_settings_entry *iv, size_t niv);
int32_t nghttp2_submit_push_promise(nghttp2_session *session, uint8_t flags,
    int32_t stream_id, const nghttp2_nv *nva, size_t nvlen,
    void *promised_stream_user_data);
int nghttp2_submit_ping(nghttp2_session *session, uint8_t flags,
    const uint8_t *opaque_data);
int nghttp2_submit_goaway(nghttp2_session *session, uint8_t flags,
    int32_t last_stream_id, uint32_t error_code, const uint8_t *opaque_data,
    size_t opaque_data_len);
int nghttp2_submit_window_update(nghttp2_session *session, uint8_t flags,
    int32_t stream_id, int32_t window_size_increment);
int nghttp2_session_set_local_window_size(nghttp2_session *session,
    uint8_t flags, int32_t stream_id, int32_t window_size);

/* ---- RFC 9218 extensible priorities (1.49+; the getter and the parser are
 * newer: see n2c_session_get_extpri_stream_priority in glue.cdef.h) ---- */
#define NGHTTP2_EXTPRI_DEFAULT_URGENCY ...
#define NGHTTP2_EXTPRI_URGENCY_HIGH ...
#define NGHTTP2_EXTPRI_URGENCY_LOW ...
typedef struct nghttp2_extpri {
    uint32_t urgency;
    int inc;
} nghttp2_extpri;
typedef struct {
    int32_t stream_id;
    uint8_t *field_value;
    size_t field_value_len;
} nghttp2_ext_priority_update;
int nghttp2_submit_priority_update(nghttp2_session *session, uint8_t flags,
    int32_t stream_id, const uint8_t *field_value, size_t field_value_len);
int nghttp2_session_change_extpri_stream_priority(nghttp2_session *session,
    int32_t stream_id, const nghttp2_extpri *extpri, int ignore_client_signal);

/* ---- HPACK ------------------------------------------------------------- */
typedef struct nghttp2_hd_deflater nghttp2_hd_deflater;
typedef struct nghttp2_hd_inflater nghttp2_hd_inflater;
typedef enum {
    NGHTTP2_HD_INFLATE_NONE, NGHTTP2_HD_INFLATE_FINAL, NGHTTP2_HD_INFLATE_EMIT
} nghttp2_hd_inflate_flag;

int nghttp2_hd_deflate_new(nghttp2_hd_deflater **deflater_ptr, size_t max_deflate_dynamic_table_size);
void nghttp2_hd_deflate_del(nghttp2_hd_deflater *deflater);
int nghttp2_hd_deflate_change_table_size(nghttp2_hd_deflater *deflater, size_t settings_max_dynamic_table_size);
size_t nghttp2_hd_deflate_bound(nghttp2_hd_deflater *deflater, const nghttp2_nv *nva, size_t nvlen);
size_t nghttp2_hd_deflate_get_num_table_entries(nghttp2_hd_deflater *deflater);
const nghttp2_nv *nghttp2_hd_deflate_get_table_entry(nghttp2_hd_deflater *deflater, size_t idx);
size_t nghttp2_hd_deflate_get_dynamic_table_size(nghttp2_hd_deflater *deflater);
size_t nghttp2_hd_deflate_get_max_dynamic_table_size(nghttp2_hd_deflater *deflater);
int nghttp2_hd_inflate_new(nghttp2_hd_inflater **inflater_ptr);
void nghttp2_hd_inflate_del(nghttp2_hd_inflater *inflater);
int nghttp2_hd_inflate_change_table_size(nghttp2_hd_inflater *inflater, size_t settings_max_dynamic_table_size);
int nghttp2_hd_inflate_end_headers(nghttp2_hd_inflater *inflater);
size_t nghttp2_hd_inflate_get_num_table_entries(nghttp2_hd_inflater *inflater);
const nghttp2_nv *nghttp2_hd_inflate_get_table_entry(nghttp2_hd_inflater *inflater, size_t idx);
size_t nghttp2_hd_inflate_get_dynamic_table_size(nghttp2_hd_inflater *inflater);
size_t nghttp2_hd_inflate_get_max_dynamic_table_size(nghttp2_hd_inflater *inflater);
