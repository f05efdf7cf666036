//! The async face of the [`channel`](crate::channel()) handles (feature `async`): futures,
//! [`Stream`] and [`Sink`], with no runtime of their own.
//!
//! A pending receive registers its task's waker in its seat's `AtomicWaker` (allocated with the
//! channel), arms the seat and tries once more before returning `Pending` (the Dekker pattern of
//! the [`wait`](crate::wait) module); the publisher wakes it after its next publish (or when it
//! closes the channel). A pending publish does the mirror, and is woken by the subscriber that
//! frees a slot (whatever its call returns, also when it unwinds) or leaves, and by a detach. Async waits never spin or park: they return `Pending`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;
use futures_sink::Sink;
use multicast_buffer_core::TryPublishError;

use crate::channel::{final_error, PublishError, Publisher, RecvError, Subscriber};

impl<T: Clone> Subscriber<T> {
    /// Polls for the next value: `Ready` with a value or an error, or `Pending` after
    /// registering `cx`'s waker (woken by the next publish, a close or a detach).
    ///
    /// # Errors
    ///
    /// [`RecvError::Closed`] and [`RecvError::Detached`], as
    /// [`recv_blocking`](Self::recv_blocking); never [`RecvError::Timeout`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::future::poll_fn;
    ///
    /// let (mut publisher, subscribers) = multicast_buffer::channel(4, 1);
    /// let mut subscriber = subscribers.subscribe().unwrap();
    /// publisher.try_publish(3).unwrap();
    /// let got = futures::executor::block_on(poll_fn(|cx| subscriber.poll_recv(cx)));
    /// assert_eq!(got, Ok(3));
    /// ```
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, RecvError>> {
        let index = self.index();
        let mut armed = false;
        loop {
            match self.recv_now() {
                Ok(value) => {
                    self.waiters().disarm_seat(index);
                    return Poll::Ready(Ok(value));
                }
                Err(err) => {
                    if let Some(err) = final_error(err) {
                        self.waiters().disarm_seat(index);
                        return Poll::Ready(Err(err));
                    }
                }
            }
            if armed {
                return Poll::Pending;
            }
            // Register, arm, then try again before returning `Pending` (see `wait`).
            self.waiters().arm_seat_task(index, cx.waker());
            armed = true;
        }
    }

    /// Receives the next value, waiting without blocking the thread.
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe. A value is taken from the channel only in the poll that
    /// returns it, so if `recv` is used as the event in a `tokio::select!` statement and some
    /// other branch completes first, or a `tokio::time::timeout` around it expires, no value was
    /// received and none is lost: the next call returns it.
    ///
    /// # Errors
    ///
    /// As [`poll_recv`](Self::poll_recv).
    ///
    /// # Examples
    ///
    /// ```
    /// use multicast_buffer::RecvError;
    ///
    /// let (mut publisher, subscribers) = multicast_buffer::channel(4, 1);
    /// let mut subscriber = subscribers.subscribe().unwrap();
    /// let reader = std::thread::spawn(move || {
    ///     futures::executor::block_on(async {
    ///         let first = subscriber.recv().await;
    ///         (first, subscriber.recv().await)
    ///     })
    /// });
    /// futures::executor::block_on(publisher.publish(1)).unwrap();
    /// drop(publisher);
    /// assert_eq!(reader.join().unwrap(), (Ok(1), Err(RecvError::Closed)));
    /// ```
    pub fn recv(&mut self) -> Recv<'_, T> {
        Recv { subscriber: self }
    }
}

/// The future of [`Subscriber::recv`].
///
/// # Cancel safety
///
/// Cancel safe: dropping it before it completes loses no value (see [`Subscriber::recv`]).
#[must_use = "futures do nothing unless polled"]
pub struct Recv<'a, T> {
    subscriber: &'a mut Subscriber<T>,
}

impl<T: Clone> Future for Recv<'_, T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().subscriber.poll_recv(cx)
    }
}

impl<T> Drop for Recv<'_, T> {
    fn drop(&mut self) {
        // A pending receive given up: nobody needs waking for it.
        let index = self.subscriber.index();
        self.subscriber.waiters().disarm_seat(index);
    }
}

impl<T> fmt::Debug for Recv<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recv").field("subscriber", &self.subscriber).finish()
    }
}

/// Every value in order, as `Ok`; `Err(RecvError::Detached { .. })` after a detach (call
/// [`Subscriber::rejoin`] to receive again); the stream ends once the publisher has gone and
/// everything was read.
///
/// # Cancel safety
///
/// `StreamExt::next` on it is cancel safe, as [`Subscriber::recv`] is: a value is taken only
/// in the poll that returns it, so a `next()` dropped in a `select!` or a timeout loses nothing.
///
/// # Examples
///
/// ```
/// use futures::StreamExt;
///
/// let (mut publisher, subscribers) = multicast_buffer::channel(8, 1);
/// let subscriber = subscribers.subscribe().unwrap();
/// publisher.publish_iter(0..3);
/// drop(publisher);
/// let got: Vec<_> = futures::executor::block_on(subscriber.collect());
/// assert_eq!(got, [Ok(0), Ok(1), Ok(2)]);
/// ```
impl<T: Clone> Stream for Subscriber<T> {
    type Item = Result<T, RecvError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.get_mut().poll_recv(cx) {
            Poll::Ready(Err(RecvError::Closed)) => Poll::Ready(None),
            Poll::Ready(result) => Poll::Ready(Some(result)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Publishes the value in `slot`, if any: `Ready(Ok)` once it is published (or there was none),
/// `Ready(Err)` if nobody is subscribed, `Pending` (value kept in `slot`, waker registered) while
/// the buffer is full.
fn poll_slot<T>(
    publisher: &mut Publisher<T>,
    slot: &mut Option<T>,
    cx: &mut Context<'_>,
) -> Poll<Result<(), PublishError<T>>> {
    let mut armed = false;
    loop {
        let Some(value) = slot.take() else {
            publisher.waiters().disarm_producer();
            return Poll::Ready(Ok(()));
        };
        match publisher.core().try_publish(value) {
            Ok(()) => {
                publisher.waiters().disarm_producer();
                publisher.waiters().after_publish();
                return Poll::Ready(Ok(()));
            }
            Err(TryPublishError::Disconnected(value)) => {
                publisher.waiters().disarm_producer();
                return Poll::Ready(Err(PublishError::Disconnected(value)));
            }
            // `Full`; `Busy` and `Closed` cannot happen to the producer role's holder.
            Err(err) => *slot = Some(err.into_inner()),
        }
        if armed {
            return Poll::Pending;
        }
        // Register, arm, then try again before returning `Pending` (see `wait`).
        publisher.waiters().arm_producer_task(cx.waker());
        armed = true;
    }
}

/// Waits for room for the value in `publisher.pending` (a `Sink` item).
fn poll_pending<T>(
    publisher: &mut Publisher<T>,
    cx: &mut Context<'_>,
) -> Poll<Result<(), PublishError<T>>> {
    let mut pending = publisher.pending.take();
    let poll = poll_slot(publisher, &mut pending, cx);
    publisher.pending = pending;
    poll
}

impl<T> Publisher<T> {
    /// Publishes `value`, waiting for room without blocking the thread.
    ///
    /// A value sent through the `Sink` and not yet flushed is published first.
    ///
    /// # Cancel safety
    ///
    /// This method is not cancel safe for `value`: the future owns it until it is published, so
    /// if the future is dropped before it completes (another branch of a `tokio::select!` won,
    /// or a `tokio::time::timeout` expired), `value` was not published and is dropped with the
    /// future. Nothing is ever published twice or half, and the values published before are
    /// unaffected; an earlier `Sink` value that this future had not published yet stays held by
    /// the publisher. To keep a value across a cancellation, send it through the `Sink`
    /// instead: a value that does not fit is then held by the publisher, not by a future, and a
    /// dropped `flush` leaves it there for the next one.
    ///
    /// # Errors
    ///
    /// [`PublishError::Disconnected`] with the value when no consumer is subscribed (or with
    /// the earlier `Sink` value, if that one found nobody); never [`PublishError::Timeout`].
    ///
    /// # Examples
    ///
    /// ```
    /// let (mut publisher, subscribers) = multicast_buffer::channel(1, 1);
    /// let mut subscriber = subscribers.subscribe().unwrap();
    /// futures::executor::block_on(async {
    ///     publisher.publish(1).await.unwrap();
    ///     assert_eq!(subscriber.recv().await, Ok(1));
    ///     publisher.publish(2).await.unwrap();
    /// });
    /// ```
    pub fn publish(&mut self, value: T) -> Publish<'_, T> {
        Publish { publisher: self, value: Some(value) }
    }
}

/// The future of [`Publisher::publish`].
///
/// # Cancel safety
///
/// Not cancel safe for its value: dropped before it completes, it drops the value unpublished
/// (see [`Publisher::publish`]).
#[must_use = "futures do nothing unless polled"]
pub struct Publish<'a, T> {
    publisher: &'a mut Publisher<T>,
    value: Option<T>,
}

// No field is ever pinned: the value is moved in and out of an `Option` by `&mut`.
impl<T> Unpin for Publish<'_, T> {}

impl<T> Future for Publish<'_, T> {
    type Output = Result<(), PublishError<T>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.publisher.pending.is_some() {
            match poll_pending(this.publisher, cx) {
                Poll::Ready(Ok(())) => {}
                other => return other,
            }
        }
        poll_slot(this.publisher, &mut this.value, cx)
    }
}

impl<T> Drop for Publish<'_, T> {
    fn drop(&mut self) {
        // A pending publish given up: nobody needs to wake the publisher for it.
        self.publisher.waiters().disarm_producer();
    }
}

impl<T> fmt::Debug for Publish<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publish")
            .field("publisher", &self.publisher)
            .field("has_value", &self.value.is_some())
            .finish()
    }
}

/// Sends values in order, each waiting for room. [`start_send`](Sink::start_send) publishes the
/// value at once when there is room; only a value that does not fit is held, and published by
/// the next `poll_ready`, `poll_flush` or `poll_close` once there is room (at most one is held).
/// Closing the sink flushes it; the channel itself is closed when the publisher is dropped.
///
/// # Cancel safety
///
/// A value that `start_send` accepted is published or held by the publisher itself, so the
/// futures of `SinkExt::flush` and `SinkExt::close` are cancel safe: dropped before they
/// complete, they leave the held value in the publisher, and the next flush (or publish)
/// publishes it. The futures that take a value, `SinkExt::send` and `SinkExt::feed`, own it
/// until `poll_ready` lets them hand it over: dropped while they wait for room for an earlier
/// held value, they drop theirs unpublished.
///
/// # Panics
///
/// `start_send` panics if it is called while a value is still held, i.e. without
/// `poll_ready` returning `Ready(Ok(()))` first (the `Sink` contract).
///
/// # Examples
///
/// ```
/// use futures::{SinkExt, StreamExt};
///
/// let (mut publisher, subscribers) = multicast_buffer::channel(2, 1);
/// let subscriber = subscribers.subscribe().unwrap();
/// let reader = std::thread::spawn(move || {
///     futures::executor::block_on(subscriber.map(Result::unwrap).collect::<Vec<_>>())
/// });
/// futures::executor::block_on(async {
///     let mut values = futures::stream::iter(0..100).map(Ok);
///     publisher.send_all(&mut values).await.unwrap();
/// });
/// drop(publisher);
/// assert_eq!(reader.join().unwrap(), (0..100).collect::<Vec<_>>());
/// ```
impl<T> Sink<T> for Publisher<T> {
    type Error = PublishError<T>;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        poll_pending(self.get_mut(), cx)
    }

    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), Self::Error> {
        let this = self.get_mut();
        assert!(this.pending.is_none(), "Sink::start_send without poll_ready: a value is held");
        match this.try_publish(item) {
            Ok(()) => Ok(()),
            Err(TryPublishError::Disconnected(item)) => Err(PublishError::Disconnected(item)),
            Err(err) => {
                this.pending = Some(err.into_inner());
                Ok(())
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        poll_pending(self.get_mut(), cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        poll_pending(self.get_mut(), cx)
    }
}
