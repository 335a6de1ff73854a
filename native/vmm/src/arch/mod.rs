//! Architecture-specific machine setup. Only x86_64 exists today; an arm64
//! module would sit beside it with the same shape (layout, regs, loader).

pub mod x86_64;
