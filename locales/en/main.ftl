# cozo-broker messages (English). Every key exists in nl, fr, de and en (a test checks).
site-name = CoZo login
skip-to-content = Skip to the content
language-label = Language
footer-help = Problems logging in? Contact the helpdesk of the app you came from.

chooser-title = How do you want to log in?
chooser-intro = Choose how you prove who you are to { $client }.
chooser-intro-direct = Choose how you prove who you are.
chooser-level-needed = This service needs a login of at least level { $level }.
method-key = Digital key
method-key-help = Username and password, then a security code from your app.
method-none = None of your login methods is strong enough for this service. Contact the helpdesk of the app.

level-low = low
level-substantial = substantial
level-high = high

key-title = Log in with your digital key
key-intro = Type the username and password you chose when you activated your digital key.
username-label = Username
password-label = Password
key-submit = Next
back-to-chooser = Choose another way to log in
wrong-credentials = The username or password is not correct. Check them and try again.

code-title = Security code
code-intro = Choose one of your keys and type the code it gives you.
code-method-legend = Your keys
key-totp = Security code from your app
key-totp-help = Open your authenticator app and type the 6-digit code shown for CoZo.
key-sms = Code by text message (SMS)
key-token = Code from your token card
key-webauthn = Security key or passkey
code-label = Code
code-submit = Log in
wrong-code = This code is not correct. Check the code in your app and try again.
replayed-code = This code was already used. Wait for the next code in your app (at most 30 seconds) and type it.
no-such-key = You have no active key of this kind. Choose another key.
locked-until = Too many wrong attempts. For your safety, logging in is blocked until { $until }. Try again after that.
step-expired = Your login took too long. Please type your username and password again.

session-expired-title = Your session has expired
session-expired = This page was open too long or was already used. Go back to the app and start again.
csrf-failed = This form has expired for your safety. Reload the page and try again.
bad-client-title = This login request cannot be handled
bad-client = The app that sent you here is not registered for this address. Go back to the app and try again; if it keeps happening, contact the app's helpdesk.
no-pending = No app is waiting for your login. Start from the app you want to use.
error-title = Something went wrong
error-internal = The login service could not complete your request. Try again in a few minutes.
back-to-start = Back to the start

account-title = Your account
account-logged-in-as = You are logged in as { $name }.
account-insz = National number
account-level = Level of your login
account-history = Your recent logins
account-when = When
account-method = Method
account-level-col = Level
account-app = App
account-no-history = No logins yet.
logout-submit = Log out
logged-out-title = You are logged out
logged-out = You are logged out of the CoZo login. Close the browser if you use a shared computer.
logout-confirm-title = Log out?
logout-confirm = Do you want to log out of the CoZo login?

insz-error-length = A national number (INSZ) has 11 digits.
insz-error-digits = A national number (INSZ) contains only digits.
insz-error-month = The month in this national number is not possible.
insz-error-day = The day in this national number is not possible.
insz-error-serial = The serial number in this national number is not possible.
insz-error-check = The check digits of this national number are wrong. Check for a typing mistake.

step-up-title = This service needs a stronger login
policy-level-substantial = This service needs a login of level substantial or high.
policy-no-sms-token = This service needs the security code from your app; a code by SMS or from the token card is not enough.
policy-insz-required = This service needs your national number (INSZ), and your login does not give it yet.
policy-registry-unavailable = The register of healthcare professionals (CoBRHA) cannot be reached right now, so your professional role cannot be checked. Try again in a few minutes.
policy-profession-required = This service is only for healthcare professionals registered in CoBRHA. If you are one, contact RIZIV-INAMI to have your registration checked.
policy-not-allowed = This service does not accept this login.
acr-requested-higher = The app asked for a stronger login than the one you used.
registry-unavailable-title = The register cannot be reached
back-to-app = Back to the app
key-webauthn-help = Use the security key or passkey you registered.
key-sms-help = Choose this and press "Log in" without a code: we send a code to your mobile phone.
key-token-help = Choose this and press "Log in" without a code: we tell you which code of your card to type.
code-help = For a code by SMS or from your token card, first press "Log in" with the field empty.
sms-sent = We sent a code by SMS to { $phone }. Type it below; it is valid for five minutes.
token-position = Type code number { $position } from your token card.
no-challenge = Ask for a code first: choose your key and press "Log in" with the code field empty.
card-used-up = Every code of your token card has been used. Ask your registration office for a new card, or choose another key.
key-not-accepted-title = Your key is not accepted here
mailbox-title = Demo mailbox
mailbox-intro = The messages the broker would send by SMS or e-mail. This page exists only when no SMS gateway or mail server is configured.
mailbox-empty = No messages yet.
