/* nghttp2_cffi._events: builds the commonest events of a read in C.
 *
 * CPython only (the limited API, one abi3 build for every CPython >= 3.9);
 * PyPy, and any CPython where this did not build, run the same loop in
 * Python (Session._collect_py), which stays the reference: tests compare
 * the two on the same records.
 *
 * build(ev, start, stop, pl, data, out, bodies, closing) reads the event
 * records glue.c queued (N2C_EV_WORDS int64 words each, at address ev;
 * payloads at address pl; `data`, the input of the read, as bytes or as the
 * address of a pinned buffer), from record `start` on, and appends to the list
 * `out` an event for each request header block (RequestReceived), final
 * response header block (ResponseReceived), DATA chunk (DataReceived) and,
 * when `closing` is true, stream closure (StreamClosed, after removing the
 * stream's entry from the dict `bodies`, as Session._collect_py does);
 * records of kind N2C_EV_NONE are skipped.  It stops at the first other
 * record and returns its index (`stop` when it handled them all): Python
 * handles that one and calls again.  Events are made without running their
 * Python __init__ (which only stores its arguments): the type's tp_new, then
 * the slots.
 *
 * configure() gives it the event classes and the constants from glue.c,
 * once, at import (nghttp2_cffi.session).
 *
 * It reads the records and payloads where glue.c keeps them, as the Python
 * loop reads the payloads through an ffi.buffer: nothing may call into the
 * same session while it runs (an allocation here can run the garbage
 * collector, hence a __del__; one that fed the session would move them).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static PyObject *request_cls, *response_cls, *data_cls, *closed_cls;
static long long ev_words, ev_none, ev_headers, ev_data, ev_closed, hcat_request;
static PyObject *s_stream_id, *s_headers, *s_end_stream, *s_data, *s_error_code;

/* An instance of cls with its three (or two) slots set. */
static PyObject *make3(PyObject *cls, PyObject *n1, PyObject *v1, PyObject *n2,
                       PyObject *v2, PyObject *n3, PyObject *v3) {
  PyObject *obj = PyType_GenericNew((PyTypeObject *)cls, NULL, NULL);
  if (obj == NULL) return NULL;
  if (PyObject_SetAttr(obj, n1, v1) < 0 || PyObject_SetAttr(obj, n2, v2) < 0 ||
      (n3 != NULL && PyObject_SetAttr(obj, n3, v3) < 0)) {
    Py_DECREF(obj);
    return NULL;
  }
  return obj;
}

/* name\0value\0name\0value as a list of (name, value) bytes pairs; like
 * Python's zip over block.split(b"\0"), a lone last piece is dropped. */
static PyObject *split_headers(const char *p, Py_ssize_t len) {
  PyObject *list = PyList_New(0);
  const char *end = p + len, *name = NULL;
  Py_ssize_t name_len = 0;
  if (list == NULL || len == 0) return list;
  for (;;) {
    const char *nul = memchr(p, 0, (size_t)(end - p));
    const char *stop = nul != NULL ? nul : end;
    if (name == NULL) {
      name = p;
      name_len = stop - p;
    } else {
      PyObject *k = PyBytes_FromStringAndSize(name, name_len);
      PyObject *v = PyBytes_FromStringAndSize(p, stop - p);
      PyObject *pair = (k != NULL && v != NULL) ? PyTuple_Pack(2, k, v) : NULL;
      Py_XDECREF(k);
      Py_XDECREF(v);
      if (pair == NULL || PyList_Append(list, pair) < 0) {
        Py_XDECREF(pair);
        Py_DECREF(list);
        return NULL;
      }
      Py_DECREF(pair);
      name = NULL;
    }
    if (nul == NULL) break;
    p = nul + 1;
  }
  return list;
}

static PyObject *build(PyObject *self, PyObject *args) {
  PyObject *ev_addr, *pl_addr, *data, *out, *bodies;
  Py_ssize_t i, stop;
  int closing;
  const int64_t *ev;
  const char *pl, *input = NULL;
  (void)self;
  if (!PyArg_ParseTuple(args, "OnnOOO!O!p", &ev_addr, &i, &stop, &pl_addr, &data,
                        &PyList_Type, &out, &PyDict_Type, &bodies, &closing))
    return NULL;
  if (request_cls == NULL) {
    PyErr_SetString(PyExc_RuntimeError, "nghttp2_cffi._events: configure() first");
    return NULL;
  }
  ev = (const int64_t *)PyLong_AsVoidPtr(ev_addr);
  pl = (const char *)PyLong_AsVoidPtr(pl_addr);
  if (PyErr_Occurred()) return NULL;
  if (PyLong_Check(data)) { /* the address of a pinned buffer (a view) */
    input = (const char *)PyLong_AsVoidPtr(data);
    if (input == NULL) return NULL;
  } else if (data != Py_None) {
    input = PyBytes_AsString(data);
    if (input == NULL) return NULL;
  }
  for (; i < stop; i++) {
    const int64_t *e = ev + i * ev_words;
    long long kind = e[0];
    PyObject *event, *sid, *value, *flag;
    if (kind == ev_none) continue;
    if (kind == ev_headers) {
      /* A request (server side) or a final response (client side, its
       * :status first and not 1xx); 1xx and trailers are Python's. */
      const char *block = pl + e[4];
      Py_ssize_t len = (Py_ssize_t)e[5];
      PyObject *cls = request_cls;
      if (e[2] != hcat_request) {
        if (len < 9 || memcmp(block, ":status\0", 8) != 0 || block[8] == '1') break;
        cls = response_cls;
      }
      value = split_headers(block, len);
      flag = e[3] ? Py_True : Py_False;
      if (value == NULL) return NULL;
      sid = PyLong_FromLongLong(e[1]);
      event = sid == NULL ? NULL
                          : make3(cls, s_stream_id, sid, s_headers, value, s_end_stream,
                                  flag);
    } else if (kind == ev_data && (input != NULL || !e[3])) {
      value = PyBytes_FromStringAndSize((e[3] ? input : pl) + e[4], (Py_ssize_t)e[5]);
      flag = e[2] ? Py_True : Py_False;
      if (value == NULL) return NULL;
      sid = PyLong_FromLongLong(e[1]);
      event = sid == NULL ? NULL
                          : make3(data_cls, s_stream_id, sid, s_data, value,
                                  s_end_stream, flag);
    } else if (kind == ev_closed && closing) {
      value = PyLong_FromLongLong(e[2]);
      if (value == NULL) return NULL;
      sid = PyLong_FromLongLong(e[1]);
      /* Session._bodies.pop(sid, None): C reads no body of a closed stream. */
      if (sid != NULL && PyDict_Size(bodies) && PyDict_GetItem(bodies, sid) != NULL &&
          PyDict_DelItem(bodies, sid) < 0) {
        Py_DECREF(value);
        Py_DECREF(sid);
        return NULL;
      }
      event = sid == NULL ? NULL
                          : make3(closed_cls, s_stream_id, sid, s_error_code, value,
                                  NULL, NULL);
    } else {
      break;
    }
    Py_DECREF(value);
    Py_XDECREF(sid);
    if (event == NULL) return NULL;
    if (PyList_Append(out, event) < 0) {
      Py_DECREF(event);
      return NULL;
    }
    Py_DECREF(event);
  }
  return PyLong_FromSsize_t(i);
}

static PyObject *configure(PyObject *self, PyObject *args) {
  PyObject *req, *res, *dat, *clo;
  (void)self;
  if (!PyArg_ParseTuple(args, "O!O!O!O!LLLLLL", &PyType_Type, &req,
                        &PyType_Type, &res, &PyType_Type, &dat, &PyType_Type,
                        &clo, &ev_words, &ev_none, &ev_headers, &ev_data,
                        &ev_closed, &hcat_request))
    return NULL;
  /* Once per process in practice; a second call keeps the first classes
   * alive (a few objects), never frees what a running build() may use. */
  Py_INCREF(req);
  Py_INCREF(res);
  Py_INCREF(dat);
  Py_INCREF(clo);
  request_cls = req;
  response_cls = res;
  data_cls = dat;
  closed_cls = clo;
  Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"build", build, METH_VARARGS,
     "Events of the commonest records (see csrc/events.c)."},
    {"configure", configure, METH_VARARGS,
     "The event classes and glue.c's constants."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "nghttp2_cffi._events",
    "Builds the commonest events of a read in C (CPython only).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__events(void) {
  s_stream_id = PyUnicode_InternFromString("stream_id");
  s_headers = PyUnicode_InternFromString("headers");
  s_end_stream = PyUnicode_InternFromString("end_stream");
  s_data = PyUnicode_InternFromString("data");
  s_error_code = PyUnicode_InternFromString("error_code");
  if (s_stream_id == NULL || s_headers == NULL || s_end_stream == NULL ||
      s_data == NULL || s_error_code == NULL)
    return NULL;
  return PyModule_Create(&module);
}
