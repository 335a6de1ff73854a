//! Small port-I/O devices: the guest's exit and milestone ports
//! (docs/guest-contract.md) and harmless stand-ins for legacy ports Linux
//! touches while booting, so it never waits on an unclaimed port.

use std::sync::Arc;

use super::BusDevice;

pub type ByteHandler = Arc<dyn Fn(u8) + Send + Sync>;

/// Port 0xf4: a 1-byte write is the guest command's exit status.
pub struct ExitPort {
    on_exit: ByteHandler,
}

impl ExitPort {
    pub fn new(on_exit: ByteHandler) -> Self {
        Self { on_exit }
    }
}

impl BusDevice for ExitPort {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }
    fn write(&mut self, offset: u64, data: &[u8]) {
        if let (0, Some(status)) = (offset, data.first()) {
            (self.on_exit)(*status);
        }
    }
}

/// Port 0xf5: a 1-byte write records a boot milestone: `1` /init started,
/// `2` command started, `3` command exited, `4` agent listening, `5` /init
/// waits for the workload. The highest milestone id docs/guest-contract.md defines.
pub const MAX_MILESTONE: u8 = 5;

pub struct MilestonePort {
    on_milestone: ByteHandler,
}

impl MilestonePort {
    pub fn new(on_milestone: ByteHandler) -> Self {
        Self { on_milestone }
    }
}

impl BusDevice for MilestonePort {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }
    fn write(&mut self, offset: u64, data: &[u8]) {
        if let (0, Some(id)) = (offset, data.first()) {
            if (1..=MAX_MILESTONE).contains(id) {
                (self.on_milestone)(*id);
            }
        }
    }
}

/// Ignores writes and reads back a constant: port 0x80 (POST/delay),
/// 0x87 (DMA page), CMOS/RTC 0x70-0x71 (all zeroes: no RTC), and so on.
pub struct Sink {
    value: u8,
}

impl Sink {
    pub fn new(value: u8) -> Self {
        Self { value }
    }
}

impl BusDevice for Sink {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(self.value);
    }
    fn write(&mut self, _offset: u64, _data: &[u8]) {}
}

/// Just enough i8042 (ports 0x60 and 0x64, inserted as one 5-byte range)
/// for the reset line: command 0xfe on 0x64 pulses CPU reset, which
/// `reboot=k` uses. Status reads 0 (nothing to read, ready for input).
pub struct I8042 {
    on_reset: Arc<dyn Fn() + Send + Sync>,
}

const I8042_CMD_OFFSET: u64 = 4;
const I8042_CMD_RESET: u8 = 0xfe;

impl I8042 {
    pub fn new(on_reset: Arc<dyn Fn() + Send + Sync>) -> Self {
        Self { on_reset }
    }
}

impl BusDevice for I8042 {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }
    fn write(&mut self, offset: u64, data: &[u8]) {
        if offset == I8042_CMD_OFFSET && data.first() == Some(&I8042_CMD_RESET) {
            (self.on_reset)();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn exit_and_milestone_ports_report_bytes() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let mut exit = ExitPort::new(Arc::new(move |b| s.lock().unwrap().push(("exit", b))));
        let s = seen.clone();
        let mut ms = MilestonePort::new(Arc::new(move |b| s.lock().unwrap().push(("ms", b))));
        exit.write(0, &[3]);
        exit.write(0, &[]);
        ms.write(0, &[1]);
        ms.write(0, &[4]);
        ms.write(0, &[5]);
        ms.write(0, &[6]); // not a milestone
        let mut b = [0xffu8; 2];
        exit.read(0, &mut b);
        assert_eq!(b, [0, 0]);
        assert_eq!(*seen.lock().unwrap(), vec![("exit", 3), ("ms", 1), ("ms", 4), ("ms", 5)]);
    }

    #[test]
    fn i8042_resets_on_0xfe_only() {
        let n = Arc::new(Mutex::new(0));
        let c = n.clone();
        let mut k = I8042::new(Arc::new(move || *c.lock().unwrap() += 1));
        k.write(0, &[0xfe]);
        k.write(4, &[0xaa]);
        k.write(4, &[0xfe]);
        assert_eq!(*n.lock().unwrap(), 1);
        let mut s = Sink::new(0);
        let mut b = [9u8];
        s.read(1, &mut b);
        assert_eq!(b, [0]);
    }
}
