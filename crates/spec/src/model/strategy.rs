//! How a service changes version: the rollout strategy and the analysis that judges it.

use std::time::Duration;

/// A service's `strategy` table.
///
/// Every field always holds a valid value; those that do not apply to `kind` keep their
/// defaults and mean nothing (`steps` is for canary, `rollback_window` for blue-green,
/// `max_surge` and `max_unavailable` for rolling).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Strategy {
    pub kind: StrategyKind,
    /// Canary: the new version's share of traffic at each step, in percent. Strictly
    /// increasing, ending at 100; only the first may be 0 (traffic only by the
    /// `X-Kiln-Canary` header). Default `[10, 50, 100]`.
    pub steps: Vec<u32>,
    /// After each step (canary), before the switch (blue-green) or between batches
    /// (rolling). Default 30s.
    pub pause: Pause,
    /// Blue-green: how long the old set stays warm after the switch, at most 24h.
    /// Default 10m.
    pub rollback_window: Duration,
    /// Rolling: instances started above `replicas` at once; `None` (the default) is as
    /// many as `replicas`: all new instances at once.
    pub max_surge: Option<u32>,
    /// Rolling: instances below `replicas` allowed at once, default 0. Never 0 together
    /// with a `max_surge` of 0.
    pub max_unavailable: u32,
    /// A rollout that makes no progress for this long is aborted: more than 0, at most
    /// 24h; default 10m.
    pub progress_deadline: Duration,
    /// Thresholds the new version must keep; without any, only readiness judges it.
    pub analysis: Analysis,
}

impl Default for Strategy {
    /// What a service without a `strategy` table gets, which is what kiln did before
    /// strategies: rolling, starting all new instances at once (`max_surge` = replicas)
    /// and stopping an old one only once its replacement is ready (`max_unavailable` = 0).
    fn default() -> Self {
        Strategy {
            kind: StrategyKind::Rolling,
            steps: vec![10, 50, 100],
            pause: Pause::default(),
            rollback_window: Duration::from_secs(600),
            max_surge: None,
            max_unavailable: 0,
            progress_deadline: Duration::from_secs(600),
            analysis: Analysis::default(),
        }
    }
}

/// `kind` of a strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StrategyKind {
    /// Start the whole new set, switch all traffic at once, keep the old set warm.
    BlueGreen,
    /// Shift traffic to the new version step by step, analysing each step.
    Canary,
    /// Replace instances in batches bounded by `max_surge` and `max_unavailable`.
    Rolling,
}

impl StrategyKind {
    pub const ALL: [StrategyKind; 3] = [
        StrategyKind::BlueGreen,
        StrategyKind::Canary,
        StrategyKind::Rolling,
    ];

    /// As written in kiln.toml: "blue-green", "canary" or "rolling".
    pub fn name(&self) -> &'static str {
        match self {
            StrategyKind::BlueGreen => "blue-green",
            StrategyKind::Canary => "canary",
            StrategyKind::Rolling => "rolling",
        }
    }

    /// By its name in kiln.toml.
    pub fn from_name(name: &str) -> Option<StrategyKind> {
        StrategyKind::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
    }
}

/// How long a rollout waits at each pause point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pause {
    /// At most 24h; 0 does not wait.
    For(Duration),
    /// Until `kiln rollout promote`.
    Manual,
}

impl Default for Pause {
    /// 30 seconds.
    fn default() -> Self {
        Pause::For(Duration::from_secs(30))
    }
}

/// `[service.NAME.strategy.analysis]`: limits on the new version, checked at each step.
/// Written, the table sets at least one threshold.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Analysis {
    /// Most (5xx responses + connection errors) / requests of the new version, in
    /// millionths: 0-1,000,000 (`max_error_rate = 0.01` is 10,000).
    pub max_error_rate_ppm: Option<u32>,
    /// Highest p99 latency of the new version: more than 0, at most 1h.
    pub max_p99_latency: Option<Duration>,
    /// Highest p99 latency of the new version relative to the stable one, in thousandths:
    /// 1000-100,000 (`max_p99_ratio = 1.5` is 1500).
    pub max_p99_ratio_permille: Option<u32>,
    /// Fewer requests than this in a step is inconclusive: keep waiting. At least 1,
    /// default 50.
    pub min_requests: u32,
}

impl Analysis {
    /// Whether any threshold is set; if none is, there is nothing to analyse.
    pub fn has_thresholds(&self) -> bool {
        self.max_error_rate_ppm.is_some()
            || self.max_p99_latency.is_some()
            || self.max_p99_ratio_permille.is_some()
    }
}

impl Default for Analysis {
    /// No thresholds, 50 requests.
    fn default() -> Self {
        Analysis {
            max_error_rate_ppm: None,
            max_p99_latency: None,
            max_p99_ratio_permille: None,
            min_requests: 50,
        }
    }
}
