pub mod demo_app;
