//! A smoltcp [`Device`] over two in-memory frame queues.

use alloc::collections::VecDeque;
use alloc::vec;

use smoltcp::phy::{Device, DeviceCapabilities, RxToken, TxToken};
use smoltcp::time::Instant;

use crate::pool::{Buf, Pool};

/// Ethernet frames in (`rx`, from the switch) and out (`tx`, to the switch).
///
/// `receive` and `transmit` hand out no token while `tx` holds `tx_limit`
/// frames or more, or while `pool` (where transmitted frames are written)
/// has no free buffer for a frame of the MTU, so the interface stops (and
/// keeps its packets) until the owner drains `tx` and the buffers come back.
/// A token from `receive` may push one frame past the limit. Without a pool
/// transmitted frames are heap vectors.
#[derive(Debug)]
pub(crate) struct QueueDevice {
    pub(crate) rx: VecDeque<Buf>,
    pub(crate) tx: VecDeque<Buf>,
    pub(crate) tx_limit: usize,
    pub(crate) caps: DeviceCapabilities,
    pub(crate) pool: Option<Pool>,
}

impl QueueDevice {
    pub(crate) fn new(caps: DeviceCapabilities, tx_limit: usize, pool: Option<Pool>) -> Self {
        let tx_limit = tx_limit.max(1);
        Self {
            rx: VecDeque::new(),
            tx: VecDeque::with_capacity(tx_limit + 1),
            tx_limit,
            caps,
            pool,
        }
    }

    fn tx_full(&self) -> bool {
        self.tx.len() >= self.tx_limit
            || self
                .pool
                .as_ref()
                .is_some_and(|p| !p.can_take(self.caps.max_transmission_unit))
    }
}

/// A received frame.
pub(crate) struct QueueRxToken(Buf);

impl RxToken for QueueRxToken {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(&self.0)
    }
}

/// Room for one frame on the transmit queue.
pub(crate) struct QueueTxToken<'a> {
    queue: &'a mut VecDeque<Buf>,
    pool: Option<&'a Pool>,
}

impl TxToken for QueueTxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        // The token was handed out because the pool had a buffer of the
        // MTU; a longer frame (never made) would fall back to the heap.
        let mut frame = self
            .pool
            .and_then(|p| p.take(len))
            .unwrap_or_else(|| Buf::from_vec(vec![0; len]));
        frame.fill(0);
        let r = f(&mut frame);
        self.queue.push_back(frame);
        r
    }
}

impl Device for QueueDevice {
    type RxToken<'a>
        = QueueRxToken
    where
        Self: 'a;
    type TxToken<'a>
        = QueueTxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, _timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        if self.tx_full() {
            return None;
        }
        let frame = self.rx.pop_front()?;
        let tx = QueueTxToken {
            queue: &mut self.tx,
            pool: self.pool.as_ref(),
        };
        Some((QueueRxToken(frame), tx))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Self::TxToken<'_>> {
        if self.tx_full() {
            return None;
        }
        Some(QueueTxToken {
            queue: &mut self.tx,
            pool: self.pool.as_ref(),
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.caps.clone()
    }
}
