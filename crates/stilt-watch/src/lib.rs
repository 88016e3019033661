//! stilt-watch (docs below)
pub mod ignore;
