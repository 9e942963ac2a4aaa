//! hcl-rs evaluation that cannot take the runner down. hcl-primitives 0.1.13 (the latest)
//! panics inside its number arithmetic on some constant expressions — integer `1 % 0`,
//! `-9223372036854775808 % -1`, and `1 / 0` in builds with debug assertions — and a job file is
//! user input. Every evaluation of job-file or plugin-config text goes through [`evaluate`],
//! which turns such a panic into an error the caller reports with the field's name.
//! Found by fuzzing (issue 7, fuzz target job_file).

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

/// Why an expression could not be evaluated.
#[derive(Debug, thiserror::Error)]
pub enum EvalFailure {
    /// hcl-rs reported the error.
    #[error("{0}")]
    Hcl(hcl::eval::Error),
    /// hcl-rs panicked on the expression.
    #[error("the expression cannot be evaluated ({0}; e.g. an integer `% 0`)")]
    Panicked(String),
}

thread_local! {
    /// Set while this thread evaluates, so the panic hook stays quiet for hcl-rs's panics.
    static EVALUATING: Cell<bool> = const { Cell::new(false) };
}

static QUIET_HOOK: Once = Once::new();

/// `x.evaluate(ctx)`, with a panic inside hcl-rs reported as [`EvalFailure::Panicked`].
pub fn evaluate<T: hcl::eval::Evaluate>(
    x: &T,
    ctx: &hcl::eval::Context<'_>,
) -> Result<T::Output, EvalFailure> {
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !EVALUATING.with(Cell::get) {
                previous(info);
            }
        }));
    });
    EVALUATING.with(|e| e.set(true));
    // Evaluation only reads `x` and `ctx`; nothing shared is left half-updated by a panic.
    let outcome = catch_unwind(AssertUnwindSafe(|| x.evaluate(ctx)));
    EVALUATING.with(|e| e.set(false));
    match outcome {
        Ok(result) => result.map_err(EvalFailure::Hcl),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "hcl-rs panicked".to_owned());
            Err(EvalFailure::Panicked(msg))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expr(text: &str) -> hcl::Expression {
        let body = hcl::parse(&format!("x = {text}\n")).unwrap_or_default();
        body.attributes()
            .next()
            .map(|a| a.expr.clone())
            .unwrap_or(hcl::Expression::Null)
    }

    #[test]
    fn integer_remainder_by_zero_is_an_error_not_a_panic() {
        let ctx = hcl::eval::Context::new();
        for text in ["1 % 0", "-9223372036854775808 % -1"] {
            let e = evaluate(&expr(text), &ctx).expect_err(text);
            assert!(matches!(e, EvalFailure::Panicked(_)), "{text}: {e}");
            assert!(e.to_string().contains("cannot be evaluated"), "{e}");
        }
    }

    #[test]
    fn ordinary_expressions_and_errors_pass_through() {
        let ctx = hcl::eval::Context::new();
        let v = evaluate(&expr("7 % 4"), &ctx).expect("7 % 4");
        assert_eq!(v, hcl::Value::from(3u64));
        let e = evaluate(&expr("nosuchvar"), &ctx).expect_err("unknown variable");
        assert!(matches!(e, EvalFailure::Hcl(_)), "{e}");
    }
}
