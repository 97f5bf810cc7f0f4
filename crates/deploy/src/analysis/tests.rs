//! One test per rule of [`evaluate`], [`error_rate_ppm`] and [`p99_from_histogram`].

use super::*;

fn window(requests: u64, errors: u64, p99_ms: Option<u64>) -> Window {
    Window {
        requests,
        errors,
        p99_ms,
    }
}

fn limits(error_ppm: Option<u32>, p99: Option<u64>, ratio: Option<u32>) -> Thresholds {
    Thresholds {
        max_error_rate_ppm: error_ppm,
        max_p99_ms: p99,
        max_p99_ratio_permille: ratio,
        min_requests: 50,
    }
}

fn inconclusive(reason: &str) -> Verdict {
    Verdict::Inconclusive {
        reason: reason.to_string(),
    }
}

fn fail(reason: &str) -> Verdict {
    Verdict::Fail {
        reason: reason.to_string(),
    }
}

fn pass(summary: &str) -> Verdict {
    Verdict::Pass {
        summary: summary.to_string(),
    }
}

#[test]
fn too_few_requests_is_inconclusive_even_when_every_one_failed() {
    let t = limits(Some(10_000), Some(300), None);
    let verdict = evaluate(&window(12, 12, Some(5000)), &Window::default(), &t);
    assert_eq!(verdict, inconclusive("12 of 50 requests"));
}

#[test]
fn no_request_never_passes_even_with_a_minimum_of_zero() {
    let t = Thresholds {
        min_requests: 0,
        ..limits(None, None, None)
    };
    let verdict = evaluate(&Window::default(), &Window::default(), &t);
    assert_eq!(verdict, inconclusive("0 of 1 requests"));
}

#[test]
fn an_error_rate_above_the_limit_fails() {
    let t = limits(Some(10_000), None, None);
    let verdict = evaluate(&window(400, 124, None), &Window::default(), &t);
    assert_eq!(verdict, fail("error rate 31.0 % > 1.0 % over 400 requests"));
}

#[test]
fn an_error_rate_at_the_limit_passes() {
    let t = limits(Some(10_000), None, None);
    let verdict = evaluate(&window(400, 4, None), &Window::default(), &t);
    assert_eq!(verdict, pass("error rate 1.0 % ≤ 1.0 % over 400 requests"));
}

#[test]
fn a_rate_just_above_the_limit_prints_enough_decimals_to_differ() {
    let t = limits(Some(10_000), None, None);
    let verdict = evaluate(&window(100_000, 1001, None), &Window::default(), &t);
    assert_eq!(
        verdict,
        fail("error rate 1.001 % > 1.000 % over 100000 requests")
    );
}

#[test]
fn a_fine_limit_prints_with_its_own_precision() {
    let t = limits(Some(500), None, None);
    let verdict = evaluate(&window(1000, 3, None), &Window::default(), &t);
    assert_eq!(
        verdict,
        fail("error rate 0.30 % > 0.05 % over 1000 requests")
    );
}

#[test]
fn a_p99_above_the_limit_fails() {
    let t = limits(None, Some(300), None);
    let verdict = evaluate(&window(400, 0, Some(450)), &Window::default(), &t);
    assert_eq!(verdict, fail("p99 450 ms > 300 ms over 400 requests"));
}

#[test]
fn a_p99_limit_without_latency_data_is_inconclusive() {
    let t = limits(None, Some(300), None);
    let verdict = evaluate(&window(400, 0, None), &Window::default(), &t);
    assert_eq!(
        verdict,
        inconclusive("no p99 latency for the new version (400 requests)")
    );
}

#[test]
fn a_p99_ratio_above_the_limit_fails() {
    let t = limits(None, None, Some(1500));
    let verdict = evaluate(&window(400, 0, Some(450)), &window(900, 0, Some(150)), &t);
    assert_eq!(
        verdict,
        fail("p99 450 ms = 3.00× stable 150 ms > 1.50× over 400 requests")
    );
}

#[test]
fn a_p99_ratio_within_the_limit_passes() {
    let t = limits(None, None, Some(1500));
    let verdict = evaluate(&window(400, 0, Some(160)), &window(900, 0, Some(150)), &t);
    assert_eq!(
        verdict,
        pass("p99 160 ms = 1.07× stable 150 ms ≤ 1.50× over 400 requests")
    );
}

#[test]
fn a_p99_ratio_needs_enough_stable_requests() {
    let t = limits(None, None, Some(1500));
    let verdict = evaluate(&window(400, 0, Some(450)), &window(10, 0, Some(150)), &t);
    assert_eq!(
        verdict,
        inconclusive("stable version: 10 of 50 requests for the p99 ratio (400 requests)")
    );
}

#[test]
fn a_p99_ratio_needs_a_stable_p99() {
    let t = limits(None, None, Some(1500));
    let verdict = evaluate(&window(400, 0, Some(450)), &window(900, 0, None), &t);
    assert_eq!(
        verdict,
        inconclusive("no p99 latency for the stable version (400 requests)")
    );
}

#[test]
fn a_stable_p99_of_zero_counts_as_one_millisecond() {
    let t = limits(None, None, Some(2000));
    let verdict = evaluate(&window(400, 0, Some(2)), &window(900, 0, Some(0)), &t);
    assert!(verdict.is_pass(), "{verdict}");
    let verdict = evaluate(&window(400, 0, Some(3)), &window(900, 0, Some(0)), &t);
    assert!(verdict.is_fail(), "{verdict}");
}

#[test]
fn a_failure_wins_over_missing_data_elsewhere() {
    let t = limits(Some(10_000), Some(300), Some(1500));
    let verdict = evaluate(&window(400, 124, None), &window(3, 0, None), &t);
    assert_eq!(verdict, fail("error rate 31.0 % > 1.0 % over 400 requests"));
}

#[test]
fn every_failure_is_named() {
    let t = limits(Some(10_000), Some(300), None);
    let verdict = evaluate(&window(400, 124, Some(450)), &Window::default(), &t);
    assert_eq!(
        verdict,
        fail("error rate 31.0 % > 1.0 %, p99 450 ms > 300 ms over 400 requests")
    );
}

#[test]
fn a_pass_summarises_every_figure() {
    let t = limits(Some(10_000), Some(300), Some(1500));
    let verdict = evaluate(&window(400, 1, Some(120)), &window(900, 0, Some(100)), &t);
    assert_eq!(
        verdict,
        pass(
            "error rate 0.3 % ≤ 1.0 %, p99 120 ms ≤ 300 ms, \
             p99 120 ms = 1.20× stable 100 ms ≤ 1.50× over 400 requests"
        )
    );
}

#[test]
fn without_thresholds_enough_requests_pass() {
    let verdict = evaluate(
        &window(50, 50, None),
        &Window::default(),
        &limits(None, None, None),
    );
    assert_eq!(verdict, pass("50 requests, no thresholds set"));
}

#[test]
fn verdicts_display_with_their_kind() {
    assert_eq!(pass("x").to_string(), "pass: x");
    assert_eq!(fail("y").to_string(), "fail: y");
    assert_eq!(inconclusive("z").to_string(), "inconclusive: z");
}

#[test]
fn verdicts_serialize_tagged() {
    let json = serde_json::to_string(&fail("error rate")).unwrap();
    assert_eq!(json, r#"{"verdict":"fail","reason":"error rate"}"#);
    let back: Verdict = serde_json::from_str(&json).unwrap();
    assert_eq!(back, fail("error rate"));
}

#[test]
fn error_rate_is_rounded_parts_per_million() {
    assert_eq!(error_rate_ppm(&Window::default()), None);
    assert_eq!(error_rate_ppm(&window(400, 124, None)), Some(310_000));
    assert_eq!(error_rate_ppm(&window(3, 1, None)), Some(333_333));
    assert_eq!(error_rate_ppm(&window(3, 2, None)), Some(666_667));
    assert_eq!(error_rate_ppm(&window(1, u64::MAX, None)), Some(u32::MAX));
}

#[test]
fn p99_is_the_upper_bound_of_its_bucket() {
    let buckets = [
        (0.005, 10),
        (0.05, 900),
        (0.3, 995),
        (1.0, 1000),
        (f64::INFINITY, 1000),
    ];
    // 99 % of 1000 is 990: first reached in the 0.3 s bucket.
    assert_eq!(p99_from_histogram(&buckets), Some(300));
}

#[test]
fn p99_on_an_exact_boundary_stays_in_the_lower_bucket() {
    let buckets = [(0.1, 99), (0.2, 100), (f64::INFINITY, 100)];
    assert_eq!(p99_from_histogram(&buckets), Some(100));
}

#[test]
fn p99_rounds_sub_millisecond_bounds_up() {
    let buckets = [(0.0005, 100), (f64::INFINITY, 100)];
    assert_eq!(p99_from_histogram(&buckets), Some(1));
}

#[test]
fn p99_in_the_infinite_bucket_is_above_the_highest_bound() {
    let buckets = [(0.1, 10), (2.5, 50), (f64::INFINITY, 100)];
    assert_eq!(p99_from_histogram(&buckets), Some(2501));
}

#[test]
fn p99_without_observations_is_none() {
    assert_eq!(p99_from_histogram(&[]), None);
    assert_eq!(p99_from_histogram(&[(0.1, 0), (f64::INFINITY, 0)]), None);
    assert_eq!(p99_from_histogram(&[(f64::INFINITY, 7)]), None);
}

#[test]
fn p99_accepts_buckets_in_any_order_and_ignores_nan() {
    let buckets = [(f64::INFINITY, 100), (f64::NAN, 3), (0.2, 100), (0.1, 50)];
    assert_eq!(p99_from_histogram(&buckets), Some(200));
}

#[test]
fn p99_never_lets_cumulative_counts_decrease() {
    // A counter reset made the +Inf delta smaller than a lower bucket's.
    let buckets = [(0.1, 100), (0.2, 100), (f64::INFINITY, 40)];
    assert_eq!(p99_from_histogram(&buckets), Some(100));
}
