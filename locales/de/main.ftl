# cozo-broker-Meldungen (Deutsch). Jeder Schlüssel existiert in nl, fr, de und en (ein Test prüft dies).
site-name = CoZo-Anmeldung
skip-to-content = Zum Inhalt springen
language-label = Sprache
footer-help = Probleme bei der Anmeldung? Wenden Sie sich an den Helpdesk der App, von der Sie gekommen sind.

chooser-title = Wie möchten Sie sich anmelden?
chooser-intro = Wählen Sie, wie Sie gegenüber { $client } nachweisen, wer Sie sind.
chooser-intro-direct = Wählen Sie, wie Sie nachweisen, wer Sie sind.
chooser-level-needed = Für diesen Dienst ist eine Anmeldung mit mindestens dem Niveau { $level } erforderlich.
method-key = Digitaler Schlüssel
method-key-help = Benutzername und Passwort, danach ein Sicherheitscode aus Ihrer App.
method-none = Keine Ihrer Anmeldemethoden ist für diesen Dienst sicher genug. Wenden Sie sich an den Helpdesk der App.

level-low = niedrig
level-substantial = substanziell
level-high = hoch

key-title = Mit Ihrem digitalen Schlüssel anmelden
key-intro = Geben Sie den Benutzernamen und das Passwort ein, die Sie bei der Aktivierung Ihres digitalen Schlüssels gewählt haben.
username-label = Benutzername
password-label = Passwort
key-submit = Weiter
back-to-chooser = Andere Anmeldeart wählen
wrong-credentials = Der Benutzername oder das Passwort ist nicht korrekt. Bitte prüfen Sie Ihre Eingaben und versuchen Sie es erneut.

code-title = Sicherheitscode
code-intro = Wählen Sie einen Ihrer Schlüssel und geben Sie den Code ein, den er Ihnen anzeigt.
code-method-legend = Ihre Schlüssel
key-totp = Sicherheitscode aus Ihrer App
key-totp-help = Öffnen Sie Ihre Authentifizierungs-App und geben Sie den 6-stelligen Code ein, der für CoZo angezeigt wird.
key-sms = Code per SMS
key-token = Code von Ihrer Token-Karte
key-webauthn = Sicherheitsschlüssel oder Passkey
code-label = Sicherheitscode
code-submit = Anmelden
wrong-code = Dieser Code ist nicht korrekt. Prüfen Sie den Code in Ihrer App und versuchen Sie es erneut.
replayed-code = Dieser Code wurde bereits verwendet. Warten Sie auf den nächsten Code in Ihrer App (höchstens 30 Sekunden) und geben Sie ihn ein.
no-such-key = Sie haben keinen aktiven Schlüssel dieser Art. Wählen Sie einen anderen Schlüssel.
locked-until = Zu viele fehlerhafte Versuche. Zu Ihrer Sicherheit ist die Anmeldung bis { $until } gesperrt. Versuchen Sie es danach erneut.
step-expired = Ihre Anmeldung hat zu lange gedauert. Bitte geben Sie Ihren Benutzernamen und Ihr Passwort erneut ein.

session-expired-title = Ihre Sitzung ist abgelaufen
session-expired = Diese Seite war zu lange geöffnet oder wurde bereits verwendet. Kehren Sie zur App zurück und beginnen Sie erneut.
csrf-failed = Dieses Formular ist zu Ihrer Sicherheit abgelaufen. Laden Sie die Seite neu und versuchen Sie es erneut.
bad-client-title = Diese Anmeldeanfrage kann nicht bearbeitet werden
bad-client = Die App, die Sie hierher geschickt hat, ist für diese Adresse nicht registriert. Kehren Sie zur App zurück und versuchen Sie es erneut; wenn das Problem weiterhin auftritt, wenden Sie sich an den Helpdesk der App.
no-pending = Keine App wartet auf Ihre Anmeldung. Beginnen Sie in der App, die Sie verwenden möchten.
error-title = Etwas ist schiefgelaufen
error-internal = Der Anmeldedienst konnte Ihre Anfrage nicht abschließen. Versuchen Sie es in einigen Minuten erneut.
back-to-start = Zurück zum Anfang

account-title = Ihr Konto
account-logged-in-as = Sie sind als { $name } angemeldet.
account-insz = Nationalregisternummer (INSZ)
account-level = Niveau Ihrer Anmeldung
account-history = Ihre letzten Anmeldungen
account-when = Wann
account-method = Methode
account-level-col = Niveau
account-app = Anwendung
account-no-history = Noch keine Anmeldungen.
logout-submit = Abmelden
logged-out-title = Sie sind abgemeldet
logged-out = Sie sind von der CoZo-Anmeldung abgemeldet. Schließen Sie den Browser, wenn Sie einen gemeinsam genutzten Computer verwenden.
logout-confirm-title = Abmelden?
logout-confirm = Möchten Sie sich von der CoZo-Anmeldung abmelden?

insz-error-length = Eine Nationalregisternummer (INSZ) hat 11 Ziffern.
insz-error-digits = Eine Nationalregisternummer (INSZ) enthält nur Ziffern.
insz-error-month = Der Monat in dieser Nationalregisternummer ist nicht möglich.
insz-error-day = Der Tag in dieser Nationalregisternummer ist nicht möglich.
insz-error-serial = Die laufende Nummer in dieser Nationalregisternummer ist nicht möglich.
insz-error-check = Die Prüfziffern dieser Nationalregisternummer sind falsch. Prüfen Sie, ob Sie sich vertippt haben.

step-up-title = Dieser Dienst verlangt eine stärkere Anmeldung
policy-level-substantial = Dieser Dienst verlangt eine Anmeldung der Stufe substanziell oder hoch.
policy-no-sms-token = Dieser Dienst verlangt den Sicherheitscode aus Ihrer App; ein Code per SMS oder von der Token-Karte genügt nicht.
policy-insz-required = Dieser Dienst verlangt Ihre Nationalregisternummer (INSZ), die Ihre Anmeldung noch nicht liefert.
policy-registry-unavailable = Das Register der Gesundheitsdienstleister (CoBRHA) ist gerade nicht erreichbar, daher kann Ihr Beruf nicht geprüft werden. Versuchen Sie es in einigen Minuten erneut.
policy-profession-required = Dieser Dienst ist nur für in CoBRHA registrierte Gesundheitsdienstleister. Wenn Sie einer sind, wenden Sie sich an das LIKIV, um Ihre Registrierung prüfen zu lassen.
policy-not-allowed = Dieser Dienst akzeptiert diese Anmeldung nicht.
acr-requested-higher = Die App hat eine stärkere Anmeldung verlangt als die, die Sie benutzt haben.
registry-unavailable-title = Das Register ist nicht erreichbar
back-to-app = Zurück zur App
key-webauthn-help = Verwenden Sie den Sicherheitsschlüssel oder Passkey, den Sie registriert haben.
key-sms-help = Wählen Sie dies und klicken Sie ohne Code auf „Anmelden“: Wir senden einen Code an Ihr Mobiltelefon.
key-token-help = Wählen Sie dies und klicken Sie ohne Code auf „Anmelden“: Wir sagen Ihnen, welchen Code Ihrer Karte Sie eingeben sollen.
code-help = Für einen Code per SMS oder von Ihrer Token-Karte klicken Sie zuerst mit leerem Feld auf „Anmelden“.
sms-sent = Wir haben einen Code per SMS an { $phone } gesendet. Geben Sie ihn unten ein; er ist fünf Minuten gültig.
token-position = Geben Sie den Code Nummer { $position } Ihrer Token-Karte ein.
no-challenge = Fordern Sie zuerst einen Code an: Wählen Sie Ihren Schlüssel und klicken Sie mit leerem Codefeld auf „Anmelden“.
card-used-up = Alle Codes Ihrer Token-Karte wurden verwendet. Fragen Sie Ihr Registrierungsbüro nach einer neuen Karte oder wählen Sie einen anderen Schlüssel.
key-not-accepted-title = Ihr Schlüssel wird hier nicht akzeptiert
mailbox-title = Demo-Postfach
mailbox-intro = Die Nachrichten, die der Broker per SMS oder E-Mail senden würde. Diese Seite gibt es nur, wenn kein SMS-Gateway und kein Mailserver eingerichtet ist.
mailbox-empty = Noch keine Nachrichten.
