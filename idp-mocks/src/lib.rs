pub mod bis_register;
pub mod cobrha;
pub mod demo_app;
pub mod eidas;
mod registry_mock;
