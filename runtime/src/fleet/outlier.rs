//! Outlier detection's sweeps (gRPC A50): every interval, the calls each endpoint answered and
//! failed since the last sweep are judged — success rate against the fleet's, failure share
//! against a threshold — and outliers ejected; an endpoint not ejected earns one ejection back.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use super::balance::Balancer;
use super::endpoint::EndpointState;
use super::Ejection;

/// Starts the sweeps of `balancer`'s ejection config (when it has one), until the balancer goes.
pub(crate) fn sweep(balancer: &Arc<Balancer>) {
    let Some(interval) = balancer.ejection.as_ref().map(|e| e.interval) else { return };
    let balancer: Weak<Balancer> = Arc::downgrade(balancer);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(balancer) = balancer.upgrade() else { return };
            if let Some(ejection) = &balancer.ejection {
                once(&balancer, ejection);
            }
        }
    });
}

/// One sweep.
fn once(balancer: &Balancer, ejection: &Ejection) {
    let snapshot = balancer.snapshot.load();
    let endpoints = &snapshot.endpoints;
    let Some(first) = endpoints.first() else { return };
    let now = first.now();
    // This interval's calls, and the counters reset for the next.
    let counts: Vec<(&Arc<EndpointState>, u32, u32)> = endpoints
        .iter()
        .map(|e| (e, e.interval_calls.swap(0, Ordering::Relaxed), e.interval_failures.swap(0, Ordering::Relaxed)))
        .collect();
    if let Some(rule) = &ejection.success_rate {
        let judged: Vec<_> = counts.iter().filter(|c| c.1 >= rule.request_volume).collect();
        if judged.len() >= rule.minimum_hosts && !judged.is_empty() {
            let rates: Vec<f64> = judged.iter().map(|c| f64::from(c.1 - c.2) / f64::from(c.1)).collect();
            let mean = rates.iter().sum::<f64>() / rates.len() as f64;
            let variance = rates.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / rates.len() as f64;
            let floor = mean - rule.stdev_factor * variance.sqrt();
            for (c, rate) in judged.iter().zip(rates) {
                if rate < floor && enforced(rule.enforcement_percentage) {
                    balancer.maybe_eject(c.0, ejection);
                }
            }
        }
    }
    if let Some(rule) = &ejection.failure_percentage {
        let judged: Vec<_> = counts.iter().filter(|c| c.1 >= rule.request_volume).collect();
        if judged.len() >= rule.minimum_hosts {
            for c in judged {
                if u64::from(c.2) * 100 > u64::from(c.1) * u64::from(rule.threshold) && enforced(rule.enforcement_percentage) {
                    balancer.maybe_eject(c.0, ejection);
                }
            }
        }
    }
    // An endpoint not ejected earns one ejection back.
    for e in endpoints.iter().filter(|e| e.available(now) && !e.ejected.load(Ordering::Relaxed)) {
        let _ = e.ejections.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }
}

/// Whether a rule enforced `percent` of the time applies this time.
fn enforced(percent: u8) -> bool {
    percent >= 100 || fastrand::u8(0..100) < percent
}
