"""How a coroutine callback runs: an ``async def`` handler callback or an
ASGI app, as a task of its stream.

Over HTTP/2 (and HTTP/1.1) it starts eagerly: its first step runs at once,
in the read that brought the request, so one that answers without waiting
costs no loop round (Python 3.12's ``Task(eager_start=True)``, done by hand
on 3.9-3.11 where the task still exists for :func:`asyncio.current_task`).
A connection with ``eager_start = False`` makes a plain task instead.
:class:`CoroutineCallbacks` is a part of
:class:`~server.connection.Connection`.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import types
from asyncio.tasks import _enter_task, _leave_task
from typing import TYPE_CHECKING, Any, Callable

from .errors import ClientDisconnected

if TYPE_CHECKING:
    from .stream import Stream

# Python 3.12+ starts a task eagerly itself (and sets it as current_task()).
_EAGER_TASKS = sys.version_info >= (3, 12)
# create_task(context=) (3.11+): the first step runs in the task's context.
_TASK_CONTEXT = sys.version_info >= (3, 11)


class CoroutineCallbacks:
    """Runs a stream's coroutine callback as its task (see the module)."""

    _loop: asyncio.AbstractEventLoop
    #: Coroutine callbacks running (counted from their first step: one
    #: cancelled before it never runs): a stream reset under one does not
    #: stop it, so HTTP2Protocol refuses new streams past a bound.
    _tasks = 0

    # The connection's: what follows a callback's end, and its failure.
    _finished: Callable[[Stream], None]
    _handler_failed: Callable[[Stream], None]

    if _EAGER_TASKS:

        def _start(self, stream: Stream, coro: Any) -> None:
            """Run a coroutine callback to its first suspension now, as a
            task started eagerly (one that never suspends is never scheduled:
            its response goes out with this read's other responses)."""
            task = asyncio.Task(self._run(stream, coro), loop=self._loop, eager_start=True)  # type: ignore[call-arg,unused-ignore]
            if not task.done() and (stream.task is None or stream.task.done()):
                stream.task = task

    else:

        def _start(self, stream: Stream, coro: Any) -> None:
            """Run a coroutine callback to its first suspension now, as its
            task (``Task(eager_start=True)`` of Python 3.12, done by hand):
            the task exists, so the callback sees it as
            :func:`asyncio.current_task` (anyio, Starlette need it), but its
            first step runs here, in its context, and the task's own first
            step only carries on (:meth:`_resume`).  A request answered
            without waiting costs no loop round for its body: its response
            goes out with this read's other responses."""
            loop = self._loop
            resume = self._resume(stream, coro)
            context: Any
            if _TASK_CONTEXT:
                context = contextvars.copy_context()
                task = loop.create_task(resume, context=context)  # type: ignore[call-arg,unused-ignore]
            else:
                task = loop.create_task(resume)
                context = getattr(task, "_context", None)  # PyPy's tasks are Python's
                if context is None:
                    return  # CPython 3.9, 3.10: the task runs it from the start
            outer = asyncio.current_task(loop)  # a handler's task that pushes, say
            if outer is not None:
                _leave_task(loop, outer)
            _enter_task(loop, task)
            try:
                context.run(next, resume)
            except StopIteration:
                return  # done: the task's step finds it finished
            finally:
                _leave_task(loop, task)
                if outer is not None:
                    _enter_task(loop, outer)
            if stream.task is None or stream.task.done():
                stream.task = task

        @types.coroutine
        def _resume(self, stream: Stream, coro: Any) -> Any:
            """The task of a coroutine callback: its first step (run by
            :meth:`_start`, which the first ``yield`` returns to), then as
            ``await coro``.  A cancel before the task's first step is thrown
            into ``coro``, not lost."""
            self._tasks += 1
            try:
                value = coro.send(None)
                try:
                    yield  # back to _start; the task's first step resumes here
                except BaseException as exc:  # noqa: BLE001 - handed to coro
                    value = coro.throw(exc)
                while True:
                    try:
                        sent = yield value
                    except GeneratorExit:
                        coro.close()
                        raise
                    except BaseException as exc:  # noqa: BLE001 - handed to coro
                        value = coro.throw(exc)
                    else:
                        value = coro.send(sent)
            except StopIteration:
                pass
            except (asyncio.CancelledError, ClientDisconnected):
                pass
            except Exception:  # noqa: BLE001 - logged by _handler_failed
                self._handler_failed(stream)
            finally:
                self._tasks -= 1
            self._finished(stream)

    async def _run(self, stream: Stream, coro: Any) -> None:
        """The task of a coroutine callback started the plain way."""
        self._tasks += 1
        try:
            await coro
        except (asyncio.CancelledError, ClientDisconnected):
            pass
        except Exception:  # noqa: BLE001 - logged by _handler_failed
            self._handler_failed(stream)
        finally:
            self._tasks -= 1
        self._finished(stream)
