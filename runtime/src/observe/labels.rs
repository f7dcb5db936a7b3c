//! Label sets for the metrics, made once per method and transport and kept for the process: a
//! call builds its metric keys from them without allocating (the `metrics` facade's keys take
//! `&'static` labels as they are).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Mutex;

use metrics::Label;
use tonic::Code;

use super::names::{METHOD, STATUS, TRANSPORT};
use crate::client::TransportKind;

/// The status codes' names, by number (what `grpc.status` holds).
pub(crate) const CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// The labels of one method on one transport.
#[derive(Debug)]
pub(crate) struct MethodLabels {
    /// `grpc.method`, `transport`.
    pub(crate) plain: [Label; 2],
    /// `grpc.method`, `transport`, `grpc.status`: one set per code.
    pub(crate) with_status: [[Label; 3]; 17],
}

impl MethodLabels {
    pub(crate) fn status(&self, code: Code) -> &[Label] {
        &self.with_status[(code as i32 as usize).min(16)]
    }
}

pub(crate) fn transport_name(t: TransportKind) -> &'static str {
    match t {
        TransportKind::Grpc => "grpc",
        TransportKind::Rest => "rest",
        TransportKind::Queue => "queue",
    }
}

fn slot(t: TransportKind) -> usize {
    match t {
        TransportKind::Grpc => 0,
        TransportKind::Rest => 1,
        TransportKind::Queue => 2,
    }
}

type Table = HashMap<Box<str>, [Option<&'static MethodLabels>; 3]>;

/// Every label set made so far (shared; each made once).
static MADE: Mutex<Option<Table>> = Mutex::new(None);

thread_local! {
    /// This thread's view of [`MADE`]: a hit takes no lock.
    static SEEN: RefCell<Table> = RefCell::new(HashMap::new());
}

/// The labels of `method` (`package.Service/Method`) on `transport`. The number of label sets is
/// bounded by the methods a process serves and calls (servers ask only for methods they route).
pub(crate) fn of(method: &str, transport: TransportKind) -> &'static MethodLabels {
    let i = slot(transport);
    if let Some(found) = SEEN.with(|s| s.borrow().get(method).and_then(|e| e[i])) {
        return found;
    }
    let made = {
        let mut table = MADE.lock().unwrap_or_else(|e| e.into_inner());
        let entry = table.get_or_insert_with(HashMap::new).entry(method.into()).or_default();
        *entry[i].get_or_insert_with(|| Box::leak(Box::new(make(method, transport))))
    };
    SEEN.with(|s| s.borrow_mut().entry(method.into()).or_default()[i] = Some(made));
    made
}

fn make(method: &str, transport: TransportKind) -> MethodLabels {
    let method: &'static str = Box::leak(method.to_owned().into_boxed_str());
    let transport = transport_name(transport);
    MethodLabels {
        plain: [Label::from_static_parts(METHOD, method), Label::from_static_parts(TRANSPORT, transport)],
        with_status: std::array::from_fn(|code| {
            [
                Label::from_static_parts(METHOD, method),
                Label::from_static_parts(TRANSPORT, transport),
                Label::from_static_parts(STATUS, CODE_NAMES[code]),
            ]
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_sets_are_made_once_and_name_codes() {
        let a = of("t.S/Get", TransportKind::Grpc);
        assert!(std::ptr::eq(a, of("t.S/Get", TransportKind::Grpc)));
        let other_thread = std::thread::spawn(|| of("t.S/Get", TransportKind::Grpc) as *const MethodLabels as usize).join().unwrap();
        assert_eq!(other_thread, a as *const MethodLabels as usize);
        assert!(!std::ptr::eq(a, of("t.S/Get", TransportKind::Queue)));
        let labels = a.status(Code::Unavailable);
        assert_eq!((labels[0].value(), labels[1].value(), labels[2].value()), ("t.S/Get", "grpc", "UNAVAILABLE"));
        assert_eq!(a.status(Code::DeadlineExceeded)[2].value(), "DEADLINE_EXCEEDED");
    }
}
