//! The ISMS as code: a directory of TOML files (scope, context, the Statement of Applicability,
//! rules, exceptions, KPIs, objectives, risks, the internal audit programme) loaded and
//! validated into [`Isms`]. `vigil-collector validate --isms DIR` prints every problem with
//! its file, line and what to do; `serve` refuses to start on a definition with errors.

pub mod duration;
pub mod expr;
pub mod load;
pub mod model;
pub mod problems;
pub mod selector;

pub use load::{load_dir, load_sources};
pub use model::*;
pub use problems::{Level, Problem};
