# cozo-broker-berichten (Nederlands). Elke sleutel bestaat in nl, fr, de en en (een test controleert dit).
site-name = CoZo-aanmelding
skip-to-content = Naar de inhoud gaan
language-label = Taal
footer-help = Problemen met aanmelden? Neem contact op met de helpdesk van de app waar u vandaan kwam.

chooser-title = Hoe wilt u zich aanmelden?
chooser-intro = Kies hoe u aan { $client } bewijst wie u bent.
chooser-intro-direct = Kies hoe u bewijst wie u bent.
chooser-level-needed = Voor deze dienst moet u zich aanmelden met minstens niveau { $level }.
method-key = Digitale sleutel
method-key-help = Gebruikersnaam en wachtwoord, daarna een beveiligingscode uit uw app.
method-none = Geen van uw aanmeldmethoden is sterk genoeg voor deze dienst. Neem contact op met de helpdesk van de app.

level-low = laag
level-substantial = substantieel
level-high = hoog

key-title = Aanmelden met uw digitale sleutel
key-intro = Typ de gebruikersnaam en het wachtwoord die u hebt gekozen toen u uw digitale sleutel activeerde.
username-label = Gebruikersnaam
password-label = Wachtwoord
key-submit = Volgende
back-to-chooser = Op een andere manier aanmelden
wrong-credentials = De gebruikersnaam of het wachtwoord is niet juist. Controleer ze en probeer het opnieuw.

code-title = Beveiligingscode
code-intro = Kies een van uw sleutels en typ de code die u ermee krijgt.
code-method-legend = Uw sleutels
key-totp = Beveiligingscode uit uw app
key-totp-help = Open uw authenticatie-app en typ de code van 6 cijfers die voor CoZo wordt getoond.
key-sms = Code via sms
key-token = Code van uw tokenkaart
key-webauthn = Beveiligingssleutel of toegangssleutel (passkey)
code-label = Beveiligingscode
code-submit = Aanmelden
wrong-code = Deze code is niet juist. Controleer de code in uw app en probeer het opnieuw.
replayed-code = Deze code werd al gebruikt. Wacht op de volgende code in uw app (hoogstens 30 seconden) en typ die in.
no-such-key = U hebt geen actieve sleutel van dit type. Kies een andere sleutel.
locked-until = Te veel foute pogingen. Voor uw veiligheid is aanmelden geblokkeerd tot { $until }. Probeer het daarna opnieuw.
step-expired = Uw aanmelding duurde te lang. Typ opnieuw uw gebruikersnaam en wachtwoord.

session-expired-title = Uw sessie is verlopen
session-expired = Deze pagina stond te lang open of werd al gebruikt. Ga terug naar de app en begin opnieuw.
csrf-failed = Dit formulier is voor uw veiligheid verlopen. Laad de pagina opnieuw en probeer het nog eens.
bad-client-title = Deze aanmeldingsaanvraag kan niet worden verwerkt
bad-client = De app die u hierheen heeft gestuurd, is niet geregistreerd voor dit adres. Ga terug naar de app en probeer het opnieuw. Blijft het probleem zich voordoen, neem dan contact op met de helpdesk van de app.
no-pending = Er wacht geen enkele app op uw aanmelding. Begin in de app die u wilt gebruiken.
error-title = Er is iets misgegaan
error-internal = De aanmeldingsdienst kon uw aanvraag niet afronden. Probeer het over enkele minuten opnieuw.
back-to-start = Terug naar het begin

account-title = Uw account
account-logged-in-as = U bent aangemeld als { $name }.
account-insz = Rijksregisternummer (INSZ)
account-level = Niveau van uw aanmelding
account-history = Uw recente aanmeldingen
account-when = Wanneer
account-method = Methode
account-level-col = Niveau
account-app = Toepassing
account-no-history = Nog geen aanmeldingen.
logout-submit = Afmelden
logged-out-title = U bent afgemeld
logged-out = U bent afgemeld bij de CoZo-aanmelding. Sluit de browser als u een gedeelde computer gebruikt.
logout-confirm-title = Afmelden?
logout-confirm = Wilt u zich afmelden bij de CoZo-aanmelding?

insz-error-length = Een rijksregisternummer (INSZ) heeft 11 cijfers.
insz-error-digits = Een rijksregisternummer (INSZ) bevat alleen cijfers.
insz-error-month = De maand in dit rijksregisternummer is niet mogelijk.
insz-error-day = De dag in dit rijksregisternummer is niet mogelijk.
insz-error-serial = Het volgnummer in dit rijksregisternummer is niet mogelijk.
insz-error-check = De controlecijfers van dit rijksregisternummer zijn niet juist. Controleer of u zich niet hebt vergist bij het typen.

step-up-title = Deze dienst vraagt een sterkere aanmelding
policy-level-substantial = Deze dienst vraagt een aanmelding van niveau substantieel of hoog.
policy-no-sms-token = Deze dienst vraagt de beveiligingscode uit uw app; een code per sms of van de tokenkaart volstaat niet.
policy-insz-required = Deze dienst vraagt uw rijksregisternummer (INSZ), en uw aanmelding geeft dat nog niet.
policy-registry-unavailable = Het register van de zorgverleners (CoBRHA) is nu niet bereikbaar, dus uw beroep kan niet worden nagekeken. Probeer het over enkele minuten opnieuw.
policy-profession-required = Deze dienst is alleen voor zorgverleners die in CoBRHA geregistreerd zijn. Bent u zorgverlener, neem dan contact op met het RIZIV om uw registratie te laten nakijken.
policy-not-allowed = Deze dienst aanvaardt deze aanmelding niet.
acr-requested-higher = De app vroeg een sterkere aanmelding dan die u gebruikte.
registry-unavailable-title = Het register is niet bereikbaar
back-to-app = Terug naar de app
key-webauthn-help = Gebruik de beveiligingssleutel of passkey die u registreerde.
key-sms-help = Kies dit en klik op "Aanmelden" zonder code: we sturen een code naar uw gsm.
key-token-help = Kies dit en klik op "Aanmelden" zonder code: we zeggen welke code van uw kaart u moet typen.
code-help = Voor een code per sms of van uw tokenkaart klikt u eerst op "Aanmelden" met een leeg veld.
sms-sent = We stuurden een code per sms naar { $phone }. Typ ze hieronder; ze is vijf minuten geldig.
token-position = Typ code nummer { $position } van uw tokenkaart.
no-challenge = Vraag eerst een code: kies uw sleutel en klik op "Aanmelden" met een leeg codeveld.
card-used-up = Alle codes van uw tokenkaart zijn gebruikt. Vraag een nieuwe kaart aan uw registratiekantoor, of kies een andere sleutel.
key-not-accepted-title = Uw sleutel wordt hier niet aanvaard
mailbox-title = Demo-brievenbus
mailbox-intro = De berichten die de broker per sms of e-mail zou versturen. Deze pagina bestaat alleen als er geen sms-gateway of mailserver is ingesteld.
mailbox-empty = Nog geen berichten.
