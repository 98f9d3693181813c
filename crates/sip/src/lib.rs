//! The SIP signalling shell of Secourir: emergency INVITEs in (18, 112, `urn:service:sos*`),
//! call-takers' phones registered with digest authentication, back-to-back legs to those
//! phones, and a screen that answers malformed input with the right 4xx. It decides nothing: the
//! platform drives it with the routing core's commands.

pub mod digest;
pub mod ingress;
pub mod overload;
pub mod registrar;
pub mod screen;
mod shell;
pub mod stream;

pub use ingress::{Ingress, Refusal, TextIngress};
pub use registrar::{Binding, Over};
pub use shell::{Decision, Numbering, Sip, SipConfig, SipError, SipEvent};
