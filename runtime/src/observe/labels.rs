//! Label sets and metric keys, made once per method and transport and kept for the process: a
//! call records its metrics with keys made (and hashed) beforehand, and finds them without a
//! lock or a hash of its own in the common case (a lock-free table of the label sets in use).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use metrics::{Key, Label};
use tonic::Code;

use super::names::{self, METHOD, STATUS, TRANSPORT};
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

/// The labels of one method on one transport, and its metric keys.
#[derive(Debug)]
pub(crate) struct MethodLabels {
    /// `package.Service/Method`.
    method: &'static str,
    /// `grpc.method`, `transport`.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) plain: [Label; 2],
    /// The keys of the metrics without a status.
    pub(crate) client_attempt_started: Key,
    pub(crate) server_call_started: Key,
    pub(crate) client_call_retries: Key,
    pub(crate) client_call_hedges: Key,
    pub(crate) client_call_transparent_retries: Key,
    /// The keys of the durations, one per status code.
    client_attempt_duration: [Key; 17],
    client_call_duration: [Key; 17],
    server_call_duration: [Key; 17],
}

impl MethodLabels {
    pub(crate) fn client_attempt_duration(&self, code: Code) -> &Key {
        &self.client_attempt_duration[index(code)]
    }

    pub(crate) fn client_call_duration(&self, code: Code) -> &Key {
        &self.client_call_duration[index(code)]
    }

    pub(crate) fn server_call_duration(&self, code: Code) -> &Key {
        &self.server_call_duration[index(code)]
    }
}

fn index(code: Code) -> usize {
    (code as i32 as usize).min(16)
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

/// The first place to look: label sets by a cheap digest of the method's name and the
/// transport, each slot taken once by the first method that lands in it (a later method with
/// the same digest is found in [`SEEN`]).
static FAST: [OnceLock<&'static MethodLabels>; 3 * FAST_SLOTS] = [const { OnceLock::new() }; 3 * FAST_SLOTS];
const FAST_SLOTS: usize = 128;

fn fast_slot(method: &str, transport: usize) -> usize {
    let b = method.as_bytes();
    let digest = b.len().wrapping_mul(31) ^ usize::from(b.last().copied().unwrap_or(0)) ^ (usize::from(b.get(b.len() / 2).copied().unwrap_or(0)) << 5);
    (digest % FAST_SLOTS) * 3 + transport
}

/// The labels of `method` (`package.Service/Method`) on `transport`. The number of label sets is
/// bounded by the methods a process serves and calls (servers ask only for methods they route).
#[inline]
pub(crate) fn of(method: &str, transport: TransportKind) -> &'static MethodLabels {
    let i = slot(transport);
    let fast = &FAST[fast_slot(method, i)];
    match fast.get().filter(|l| l.method == method) {
        Some(found) => found,
        None => of_slow(method, transport, i, fast),
    }
}

/// [`of`] past the lock-free table: this thread's map, then the shared one.
#[cold]
fn of_slow(method: &str, transport: TransportKind, i: usize, fast: &OnceLock<&'static MethodLabels>) -> &'static MethodLabels {
    if let Some(found) = SEEN.with(|s| s.borrow().get(method).and_then(|e| e[i])) {
        return found;
    }
    let made = {
        let mut table = MADE.lock().unwrap_or_else(|e| e.into_inner());
        let entry = table.get_or_insert_with(HashMap::new).entry(method.into()).or_default();
        *entry[i].get_or_insert_with(|| Box::leak(Box::new(make(method, transport))))
    };
    SEEN.with(|s| s.borrow_mut().entry(method.into()).or_default()[i] = Some(made));
    let _ = fast.set(made);
    made
}

fn make(method: &str, transport: TransportKind) -> MethodLabels {
    let method: &'static str = Box::leak(method.to_owned().into_boxed_str());
    let transport = transport_name(transport);
    let plain = [Label::from_static_parts(METHOD, method), Label::from_static_parts(TRANSPORT, transport)];
    let with_status: [[Label; 3]; 17] = std::array::from_fn(|code| {
        [Label::from_static_parts(METHOD, method), Label::from_static_parts(TRANSPORT, transport), Label::from_static_parts(STATUS, CODE_NAMES[code])]
    });
    let key = |name: &'static str| Key::from_parts(name, plain.to_vec());
    let keys = |name: &'static str| -> [Key; 17] { std::array::from_fn(|code| Key::from_parts(name, with_status[code].to_vec())) };
    MethodLabels {
        method,
        client_attempt_started: key(names::CLIENT_ATTEMPT_STARTED),
        server_call_started: key(names::SERVER_CALL_STARTED),
        client_call_retries: key(names::CLIENT_CALL_RETRIES),
        client_call_hedges: key(names::CLIENT_CALL_HEDGES),
        client_call_transparent_retries: key(names::CLIENT_CALL_TRANSPARENT_RETRIES),
        client_attempt_duration: keys(names::CLIENT_ATTEMPT_DURATION),
        client_call_duration: keys(names::CLIENT_CALL_DURATION),
        server_call_duration: keys(names::SERVER_CALL_DURATION),
        plain,
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
        let labels: Vec<_> = a.client_attempt_duration(Code::Unavailable).labels().map(|l| (l.key(), l.value())).collect();
        assert_eq!(labels, [("grpc.method", "t.S/Get"), ("transport", "grpc"), ("grpc.status", "UNAVAILABLE")]);
        assert_eq!(a.client_attempt_duration(Code::Unavailable).name(), "grpc.client.attempt.duration");
        assert_eq!(a.server_call_duration(Code::DeadlineExceeded).labels().nth(2).unwrap().value(), "DEADLINE_EXCEEDED");
        // A method whose digest meets another's is found all the same.
        let b = of("t.S/Gft", TransportKind::Grpc);
        assert_eq!(b.plain[0].value(), "t.S/Gft");
        assert!(std::ptr::eq(b, of("t.S/Gft", TransportKind::Grpc)));
    }
}
