pub mod cobrha;
pub mod demo_app;
mod registry_mock;
