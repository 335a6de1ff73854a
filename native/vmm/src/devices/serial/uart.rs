//! 16550A register model (8 I/O ports from the base).
//!
//! Transmission is instantaneous: a byte written to THR goes straight to
//! the output, so THR/TSR are always empty (LSR.THRE|TEMT) and a THR-empty
//! interrupt is pending again right after each write. Interrupts are
//! level-like: the device tracks the state of its interrupt line and sends
//! one edge (an irqfd write) each time the line goes from inactive to
//! active, which is what an edge-triggered ISA IRQ on the IOAPIC expects.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Arc;

use super::persist::{SerialState, SERIAL_STATE_VERSION};
use crate::devices::{BusDevice, Irq};

// Register offsets.
const DATA: u64 = 0; // RBR (read) / THR (write) / DLL (DLAB)
const IER: u64 = 1; // IER / DLM (DLAB)
const IIR_FCR: u64 = 2; // IIR (read) / FCR (write)
const LCR: u64 = 3;
const MCR: u64 = 4;
const LSR: u64 = 5;
const MSR: u64 = 6;
const SCR: u64 = 7;

const IER_RDI: u8 = 0x01; // received data available
const IER_THRI: u8 = 0x02; // THR empty
const IER_MASK: u8 = 0x0f;

const IIR_NONE: u8 = 0x01;
const IIR_THRI: u8 = 0x02;
const IIR_RDI: u8 = 0x04;
const IIR_FIFO_ENABLED: u8 = 0xc0;

const FCR_ENABLE: u8 = 0x01;
const FCR_CLEAR_RX: u8 = 0x02;

const LCR_DLAB: u8 = 0x80;

const MCR_DTR: u8 = 0x01;
const MCR_RTS: u8 = 0x02;
const MCR_OUT1: u8 = 0x04;
const MCR_OUT2: u8 = 0x08;
const MCR_LOOP: u8 = 0x10;
const MCR_MASK: u8 = 0x1f;

const LSR_DR: u8 = 0x01;
const LSR_THRE: u8 = 0x20;
const LSR_TEMT: u8 = 0x40;

const MSR_CTS: u8 = 0x10;
const MSR_DSR: u8 = 0x20;
const MSR_RI: u8 = 0x40;
const MSR_DCD: u8 = 0x80;

/// Receive FIFO depth of a 16550A.
pub const RX_FIFO_SIZE: usize = 16;

pub struct Serial {
    ier: u8,
    lcr: u8,
    mcr: u8,
    scr: u8,
    dll: u8,
    dlm: u8,
    fifo_enabled: bool,
    thre_pending: bool,
    /// Last computed state of the interrupt line.
    line: bool,
    rx: VecDeque<u8>,
    irq: Arc<dyn Irq>,
    out: Box<dyn Write + Send>,
}

impl Serial {
    pub fn new(irq: Arc<dyn Irq>, out: Box<dyn Write + Send>) -> Self {
        Self {
            ier: 0,
            lcr: 0x03, // 8N1
            mcr: MCR_OUT2,
            scr: 0,
            dll: 0x0c, // 9600 baud
            dlm: 0,
            fifo_enabled: false,
            thre_pending: false,
            line: false,
            rx: VecDeque::with_capacity(RX_FIFO_SIZE),
            irq,
            out,
        }
    }

    fn dlab(&self) -> bool {
        self.lcr & LCR_DLAB != 0
    }

    fn loopback(&self) -> bool {
        self.mcr & MCR_LOOP != 0
    }

    fn iir(&self) -> u8 {
        let id = if self.ier & IER_RDI != 0 && !self.rx.is_empty() {
            IIR_RDI
        } else if self.ier & IER_THRI != 0 && self.thre_pending {
            IIR_THRI
        } else {
            IIR_NONE
        };
        id | if self.fifo_enabled { IIR_FIFO_ENABLED } else { 0 }
    }

    /// Recomputes the interrupt line; one edge when it becomes active.
    fn update_irq(&mut self) {
        let active = self.iir() & IIR_NONE == 0;
        if active && !self.line {
            self.irq.trigger();
        }
        self.line = active;
    }

    fn push_rx(&mut self, b: u8) -> bool {
        if self.rx.len() >= RX_FIFO_SIZE {
            return false; // overrun: the byte is lost, as on real hardware
        }
        self.rx.push_back(b);
        true
    }

    /// Bytes from the host side to the guest (RBR); returns how many fit.
    #[allow(dead_code)] // host → guest input is not wired to anything yet
    pub fn enqueue_input(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.iter().take_while(|b| self.push_rx(**b)).count();
        self.update_irq();
        n
    }

    fn transmit(&mut self, b: u8) {
        if self.loopback() {
            self.push_rx(b);
        } else {
            // FdOutput never fails; any other writer's error just drops the byte.
            let _ = self.out.write_all(&[b]);
        }
    }

    fn read_reg(&mut self, offset: u64) -> u8 {
        match offset {
            DATA if self.dlab() => self.dll,
            DATA => self.rx.pop_front().unwrap_or(0),
            IER if self.dlab() => self.dlm,
            IER => self.ier,
            IIR_FCR => {
                let v = self.iir();
                // Reading IIR while it reports THR-empty acknowledges it.
                if v & 0x0f == IIR_THRI {
                    self.thre_pending = false;
                }
                v
            }
            LCR => self.lcr,
            MCR => self.mcr,
            LSR => LSR_THRE | LSR_TEMT | if self.rx.is_empty() { 0 } else { LSR_DR },
            MSR => {
                if self.loopback() {
                    let m = self.mcr;
                    (if m & MCR_RTS != 0 { MSR_CTS } else { 0 })
                        | (if m & MCR_DTR != 0 { MSR_DSR } else { 0 })
                        | (if m & MCR_OUT1 != 0 { MSR_RI } else { 0 })
                        | (if m & MCR_OUT2 != 0 { MSR_DCD } else { 0 })
                } else {
                    MSR_DCD | MSR_DSR | MSR_CTS
                }
            }
            SCR => self.scr,
            _ => 0,
        }
    }

    fn write_reg(&mut self, offset: u64, v: u8) {
        match offset {
            DATA if self.dlab() => self.dll = v,
            DATA => {
                self.thre_pending = false;
                self.transmit(v);
                self.thre_pending = true;
            }
            IER if self.dlab() => self.dlm = v,
            IER => {
                let newly_thri = v & IER_THRI != 0 && self.ier & IER_THRI == 0;
                self.ier = v & IER_MASK;
                if newly_thri {
                    // THR is always empty: enabling the interrupt raises it.
                    self.thre_pending = true;
                }
            }
            IIR_FCR => {
                self.fifo_enabled = v & FCR_ENABLE != 0;
                if v & FCR_CLEAR_RX != 0 {
                    self.rx.clear();
                }
            }
            LCR => self.lcr = v,
            MCR => self.mcr = v & MCR_MASK,
            SCR => self.scr = v,
            _ => {} // LSR, MSR: read-only
        }
    }

    pub fn state(&self) -> SerialState {
        SerialState {
            version: SERIAL_STATE_VERSION,
            ier: self.ier,
            lcr: self.lcr,
            mcr: self.mcr,
            scr: self.scr,
            dll: self.dll,
            dlm: self.dlm,
            fifo_enabled: self.fifo_enabled,
            thre_pending: self.thre_pending,
            line: self.line,
            rx: self.rx.iter().copied().collect(),
        }
    }

    /// The inverse of `state`, on a freshly built UART. The interrupt line
    /// is taken as saved: the irqchip's own state carries a pending edge.
    pub fn restore(&mut self, st: &SerialState) -> Result<(), String> {
        if st.version != SERIAL_STATE_VERSION {
            return Err(format!("serial state version {} (this build reads {SERIAL_STATE_VERSION})", st.version));
        }
        if st.rx.len() > RX_FIFO_SIZE {
            return Err(format!("serial receive FIFO holds {} bytes (at most {RX_FIFO_SIZE})", st.rx.len()));
        }
        self.ier = st.ier;
        self.lcr = st.lcr;
        self.mcr = st.mcr & MCR_MASK;
        self.scr = st.scr;
        self.dll = st.dll;
        self.dlm = st.dlm;
        self.fifo_enabled = st.fifo_enabled;
        self.thre_pending = st.thre_pending;
        self.line = st.line;
        self.rx = st.rx.iter().copied().collect();
        Ok(())
    }
}

impl BusDevice for Serial {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        // UART registers are byte-wide; wider accesses read the first byte.
        data.fill(0);
        if let Some(first) = data.first_mut() {
            *first = self.read_reg(offset);
        }
        self.update_irq();
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if let Some(v) = data.first() {
            self.write_reg(offset, *v);
        }
        self.update_irq();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    #[derive(Default)]
    struct CountIrq(AtomicUsize);
    impl Irq for CountIrq {
        fn trigger(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn uart() -> (Serial, Arc<CountIrq>, Sink) {
        let irq = Arc::new(CountIrq::default());
        let sink = Sink::default();
        (Serial::new(irq.clone(), Box::new(sink.clone())), irq, sink)
    }

    fn rd(s: &mut Serial, off: u64) -> u8 {
        let mut b = [0u8];
        s.read(off, &mut b);
        b[0]
    }
    fn wr(s: &mut Serial, off: u64, v: u8) {
        s.write(off, &[v]);
    }

    #[test]
    fn transmits_bytes_and_reports_empty_thr() {
        let (mut s, irq, sink) = uart();
        for b in b"ok\n" {
            wr(&mut s, DATA, *b);
        }
        assert_eq!(&*sink.0.lock().unwrap(), b"ok\n");
        assert_eq!(rd(&mut s, LSR) & (LSR_THRE | LSR_TEMT), LSR_THRE | LSR_TEMT);
        assert_eq!(irq.0.load(Ordering::SeqCst), 0, "no interrupt while IER is 0");
    }

    #[test]
    fn dlab_switches_to_the_divisor_latch() {
        let (mut s, _, sink) = uart();
        wr(&mut s, LCR, 0x83);
        wr(&mut s, DATA, 0x01);
        wr(&mut s, IER, 0x00);
        assert_eq!(rd(&mut s, DATA), 0x01);
        wr(&mut s, LCR, 0x03);
        assert!(sink.0.lock().unwrap().is_empty(), "divisor write is not data");
        assert_eq!(rd(&mut s, LCR), 0x03);
        assert_eq!(rd(&mut s, IER), 0);
    }

    #[test]
    fn scratch_and_ier_probe_like_linux() {
        let (mut s, _, _) = uart();
        wr(&mut s, SCR, 0xa5);
        assert_eq!(rd(&mut s, SCR), 0xa5);
        wr(&mut s, IER, 0);
        assert_eq!(rd(&mut s, IER) & 0x0f, 0);
        wr(&mut s, IER, 0x0f);
        assert_eq!(rd(&mut s, IER) & 0x0f, 0x0f);
        wr(&mut s, IER, 0x40);
        assert_eq!(rd(&mut s, IER) & 0x40, 0, "no XScale UUE bit");
    }

    #[test]
    fn loopback_echoes_and_mirrors_modem_lines() {
        let (mut s, _, sink) = uart();
        wr(&mut s, MCR, MCR_LOOP | 0x0a);
        assert_eq!(rd(&mut s, MSR) & 0xf0, 0x90);
        wr(&mut s, MCR, MCR_LOOP | 0x05);
        assert_eq!(rd(&mut s, MSR) & 0xf0, MSR_DSR | MSR_RI);
        wr(&mut s, DATA, b'z');
        assert!(sink.0.lock().unwrap().is_empty());
        assert_eq!(rd(&mut s, LSR) & LSR_DR, LSR_DR);
        assert_eq!(rd(&mut s, DATA), b'z');
        assert_eq!(rd(&mut s, LSR) & LSR_DR, 0);
        wr(&mut s, MCR, 0x0b);
        assert_eq!(rd(&mut s, MSR), 0xb0);
    }

    #[test]
    fn fifo_identifies_as_16550a() {
        let (mut s, _, _) = uart();
        assert_eq!(rd(&mut s, IIR_FCR), IIR_NONE);
        wr(&mut s, IIR_FCR, FCR_ENABLE);
        assert_eq!(rd(&mut s, IIR_FCR) >> 6, 3);
        assert_eq!(rd(&mut s, IIR_FCR) & 0x20, 0, "not a 16750");
    }

    #[test]
    fn thre_interrupt_edges() {
        let (mut s, irq, _) = uart();
        wr(&mut s, IER, IER_THRI);
        assert_eq!(irq.0.load(Ordering::SeqCst), 1, "enabling THRI with THR empty interrupts");
        assert_eq!(rd(&mut s, IIR_FCR) & 0x0f, IIR_THRI);
        assert_eq!(rd(&mut s, IIR_FCR) & 0x0f, IIR_NONE, "IIR read acknowledged it");
        // A burst of writes while the line is active gives a single edge.
        wr(&mut s, DATA, b'a');
        wr(&mut s, DATA, b'b');
        wr(&mut s, DATA, b'c');
        assert_eq!(irq.0.load(Ordering::SeqCst), 2);
        assert_eq!(rd(&mut s, IIR_FCR) & 0x0f, IIR_THRI);
        wr(&mut s, DATA, b'd');
        assert_eq!(irq.0.load(Ordering::SeqCst), 3);
        // Disabling and re-enabling raises it again.
        wr(&mut s, IER, 0);
        assert_eq!(rd(&mut s, IIR_FCR) & 0x0f, IIR_NONE);
        wr(&mut s, IER, IER_THRI);
        assert_eq!(irq.0.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn receive_interrupt_and_overrun() {
        let (mut s, irq, _) = uart();
        wr(&mut s, IER, IER_RDI);
        assert_eq!(s.enqueue_input(&[1u8; 20]), RX_FIFO_SIZE);
        assert_eq!(irq.0.load(Ordering::SeqCst), 1);
        assert_eq!(rd(&mut s, IIR_FCR) & 0x0f, IIR_RDI);
        for _ in 0..RX_FIFO_SIZE {
            assert_eq!(rd(&mut s, DATA), 1);
        }
        assert_eq!(rd(&mut s, IIR_FCR) & 0x0f, IIR_NONE);
        assert_eq!(rd(&mut s, DATA), 0, "empty RBR reads 0");
    }

    #[test]
    fn odd_offsets_and_widths_are_harmless() {
        let (mut s, _, _) = uart();
        let mut wide = [0xffu8; 4];
        s.read(LSR, &mut wide);
        assert_eq!(wide, [0x60, 0, 0, 0]);
        s.read(99, &mut wide);
        s.write(99, &[1, 2]);
        s.write(DATA, &[]);
        s.read(DATA, &mut []);
    }

    #[test]
    fn state_serializes() {
        let (mut s, _, _) = uart();
        wr(&mut s, MCR, MCR_LOOP);
        wr(&mut s, DATA, 7);
        let st = s.state();
        assert_eq!(st.rx, vec![7]);
        let json = serde_json::to_string(&st).unwrap();
        let back: SerialState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, st);
    }
}
