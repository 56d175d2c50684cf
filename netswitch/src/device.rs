//! A smoltcp [`Device`] over two in-memory frame queues.

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

use smoltcp::phy::{Device, DeviceCapabilities, RxToken, TxToken};
use smoltcp::time::Instant;

/// Ethernet frames in (`rx`, from the switch) and out (`tx`, to the switch).
///
/// `receive` and `transmit` hand out no token while `tx` holds `tx_limit`
/// frames or more, so the interface stops (and keeps its packets) until the
/// owner drains `tx`. A token from `receive` may push one frame past the
/// limit.
#[derive(Debug)]
pub(crate) struct QueueDevice {
    pub(crate) rx: VecDeque<Vec<u8>>,
    pub(crate) tx: VecDeque<Vec<u8>>,
    pub(crate) tx_limit: usize,
    pub(crate) caps: DeviceCapabilities,
}

impl QueueDevice {
    pub(crate) fn new(caps: DeviceCapabilities, tx_limit: usize) -> Self {
        Self {
            rx: VecDeque::new(),
            tx: VecDeque::new(),
            tx_limit: tx_limit.max(1),
            caps,
        }
    }

    fn tx_full(&self) -> bool {
        self.tx.len() >= self.tx_limit
    }
}

/// A received frame.
pub(crate) struct QueueRxToken(Vec<u8>);

impl RxToken for QueueRxToken {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(&self.0)
    }
}

/// Room for one frame on the transmit queue.
pub(crate) struct QueueTxToken<'a>(&'a mut VecDeque<Vec<u8>>);

impl TxToken for QueueTxToken<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut frame = vec![0; len];
        let r = f(&mut frame);
        self.0.push_back(frame);
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
        Some((QueueRxToken(frame), QueueTxToken(&mut self.tx)))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Self::TxToken<'_>> {
        if self.tx_full() {
            return None;
        }
        Some(QueueTxToken(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.caps.clone()
    }
}
